"""start_system's order: the simulator pool's replicas, the learner and the rollout workers'
engines start together, and no worker plays (so none searches) before the pool runs."""

from conf.loader import CONF_DIR, load_config
from conf.schema import Assets
from orchestrator import supervisor, wiring


def test_the_pool_starts_with_the_workers_and_runs_before_any_plays(monkeypatch, tmp_path):
    calls = []

    class Supervisor:
        workers = []

        def __init__(self, *args):
            calls.append("workers spawned")

        def wait_started(self):
            calls.append("workers play")

    def start_simulator(*args, wait=True, **kwargs):
        calls.append(f"pool deployed (wait={wait})")
        return "handle"

    monkeypatch.setattr(wiring, "start_simulator", start_simulator)
    monkeypatch.setattr(wiring, "wait_for_simulator", lambda sim: calls.append("pool runs"))
    monkeypatch.setattr(wiring, "start_learner", lambda *a: calls.append("learner") or "L")
    monkeypatch.setattr(wiring, "worker_spawner", lambda *a: None)
    monkeypatch.setattr(wiring, "serve_running", lambda: False)
    monkeypatch.setattr(supervisor, "WorkerSupervisor", Supervisor)
    cfg = load_config(CONF_DIR / "tiny.yaml", [])
    system = wiring.System("queue", None, None, None, None)
    wiring._start_parts(cfg, Assets("t", "p", "s", "c"), tmp_path, None, None, system,
                        wiring.Parts())
    assert calls == ["pool deployed (wait=False)", "learner", "workers spawned", "pool runs",
                     "workers play"]
    assert system.simulator == "handle"

    calls.clear()  # a system rebuilt after a fault keeps the running pool: no wait
    wiring._start_parts(cfg, Assets("t", "p", "s", "c"), tmp_path, None, None, system,
                        wiring.Parts())
    assert calls == ["learner", "workers spawned", "workers play"]
