"""The rollout worker's engine idle clock (pure, with a fake clock)."""

from actors.rollout_worker import BusyClock


def test_idle_fraction_counts_time_with_no_request_running():
    now = [0.0]
    clock = BusyClock(lambda: now[0])
    now[0] = 2.0
    clock.enter()  # busy from 2
    now[0] = 3.0
    clock.enter()  # overlapping request: still one busy span
    now[0] = 5.0
    clock.leave()
    clock.leave()  # idle from 5
    now[0] = 10.0
    assert clock.drain_idle_fraction() == 1.0 - 3.0 / 10.0
    clock.enter()  # busy from 10 through the next drain
    now[0] = 14.0
    assert clock.drain_idle_fraction() == 0.0
    now[0] = 16.0
    clock.leave()
    now[0] = 20.0
    assert clock.drain_idle_fraction() == 1.0 - 2.0 / 6.0
