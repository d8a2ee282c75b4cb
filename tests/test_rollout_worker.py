"""The rollout worker's engine load clock (pure, with a fake clock)."""

from actors.turns import BusyClock


def test_idle_fraction_and_mean_running_requests():
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
    # busy 2..5 of 10 s; running: 1 request for 1 s, 2 for 2 s -> area 5
    assert clock.drain() == {"idle_fraction": 1.0 - 3.0 / 10.0, "mean_running": 0.5}
    clock.enter()  # busy from 10 through the next drain
    now[0] = 14.0
    assert clock.drain() == {"idle_fraction": 0.0, "mean_running": 1.0}
    now[0] = 16.0
    clock.leave()
    now[0] = 20.0
    assert clock.drain() == {"idle_fraction": 1.0 - 2.0 / 6.0, "mean_running": 2.0 / 6.0}
