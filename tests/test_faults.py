"""A run survives the loss of any actor: real engines, Serve and a local Ray cluster, faults
injected between steps through train's after_step hook (or by SIGKILL on a joined
cluster). Every run that completes is checked, from batches.jsonl and metrics.jsonl:
each step was logged once, every group index below the final frontier was trained exactly
once (with the question its index maps to) and none twice, and staleness stayed within the
bound."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actors.dataset import load_questions, question_for
from conf.loader import load_config
from orchestrator import cli
from orchestrator.train import train
from orchestrator.wiring import simulator_replicas
from tests.helpers import wait_until
from tests.ray_head import cluster_processes, ray_head
from tests.wandb_file import history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SIMSEARCH = str(Path(sys.executable).with_name("simsearch"))
SIMSEARCH_ACTORS = ("RolloutWorker", "Learner", "TrajectoryQueue", "SimulatorServer",
                    "ServeController")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_each_group_trained_once(run_dir: Path, steps: int, cfg, train_path: Path):
    """Each step once; group indices trained once each, none lost below the frontier;
    each with its own question; staleness within the bound."""
    batches, metrics = rows(run_dir / "batches.jsonl"), rows(run_dir / "metrics.jsonl")
    assert [b["step"] for b in batches] == [m["step"] for m in metrics] == list(range(steps))
    groups = [tuple(g) for b in batches for g in b["groups"]]
    indices = [index for index, _ in groups]
    per_step = cfg.trainer.groups_per_step
    assert len(indices) == len(set(indices)) == steps * per_step, "a group trained twice"
    frontier = next(i for i in range(len(indices) + 1) if i not in set(indices))
    # none lost: at most (eta + 1) batches of groups are running or waiting at a time
    assert frontier >= (steps - 1 - cfg.queue.max_staleness) * per_step
    count = len(load_questions(train_path))
    assert all(q == question_for(g, count, cfg.trainer.seed) for g, q in groups)
    assert max(m["staleness/max"] for m in metrics) <= cfg.queue.max_staleness
    return metrics


def tiny(tmp_path: Path, *overrides: str):
    return load_config("conf/tiny.yaml", [f"trainer.run_dir={tmp_path}",
                                          "trainer.checkpoint_every=0", "eval.every=0",
                                          "wandb.mode=disabled", *overrides])


def test_a_group_whose_episode_raises_is_played_again(ray_cluster, tiny_assets, tmp_path):
    steps = 5
    cfg = tiny(tmp_path, f"trainer.total_steps={steps}")

    def raise_once(worker):
        """Wrap the worker's search backend: the first search after this raises."""
        class RaisingOnce:
            def __init__(self, inner):
                self.inner, self.stats, self.failed_key = inner, inner.stats, ""

            async def search(self, request):
                if not self.failed_key:
                    self.failed_key = request.key
                    raise RuntimeError(f"injected failure at {request.key}")
                return await self.inner.search(request)

        worker.search = RaisingOnce(worker.search)

    seen = {}

    def inject(step, system):
        worker = system.workers[0]
        if step == 0:
            ray_cluster.get(worker.__ray_call__.remote(raise_once), timeout=60)
        if step == steps - 1:
            seen["key"] = ray_cluster.get(worker.__ray_call__.remote(
                lambda w: w.search.failed_key), timeout=60)

    run_dir = train(cfg, after_step=inject)
    metrics = assert_each_group_trained_once(run_dir, steps, cfg, tiny_assets.data /
                                             "train.parquet")
    failed_group = int(seen["key"].split("/")[0][1:])  # g<index>/s<sample>/t<turn>
    assert metrics[-1]["rollout/failed_groups"] == 1
    trained = [g for b in rows(run_dir / "batches.jsonl") for g, _ in b["groups"]]
    assert trained.count(failed_group) == 1


def test_a_killed_rollout_worker_is_replaced_with_the_current_weights(ray_cluster,
                                                                      tiny_assets, tmp_path):
    steps = 6
    cfg = tiny(tmp_path, f"trainer.total_steps={steps}", "rollout.num_workers=2")
    seen = {}
    probe = list(range(5, 200, 3))

    def inject(step, system):
        if step == 1:
            seen["killed"] = system.rollout.slots[1].actor
            ray_cluster.kill(seen["killed"], no_restart=True)
        if step == 2:
            system.rollout.wait_started()  # the replacement takes part in the next syncs
            seen["replacement"] = system.rollout.slots[1].worker_id
        if step == steps - 1:  # after the last sync
            refs = [w.prompt_logprobs.remote(probe) for w in system.workers]
            seen["engines"] = ray_cluster.get(refs, timeout=120)
            seen["learner"] = ray_cluster.get(system.learner.prompt_logprobs.remote(probe),
                                              timeout=120)
            seen["versions"] = ray_cluster.get([w.__ray_call__.remote(lambda w: w.version)
                                                for w in system.workers], timeout=60)

    run_dir = train(cfg, after_step=inject)
    metrics = assert_each_group_trained_once(run_dir, steps, cfg, tiny_assets.data /
                                             "train.parquet")
    assert metrics[-1]["rollout/worker_restarts"] == 1
    assert seen["replacement"] == "rollout-1.1" and len(seen["engines"]) == 2
    assert seen["versions"] == [steps, steps]
    for engine in seen["engines"]:
        assert torch.allclose(torch.tensor(engine), torch.tensor(seen["learner"]), atol=1e-4)
    with pytest.raises(ray_cluster.exceptions.RayActorError):
        ray_cluster.get(seen["killed"].__ray_ready__.remote(), timeout=30)


def test_a_nan_step_rolls_back_to_the_last_healthy_checkpoint(ray_cluster, tiny_assets,
                                                               tmp_path, capsys):
    """The learner's weights turn NaN after step 4: step 5's loss is NaN, the guard rolls
    the run back to the checkpoint of step 3 at half the learning rate (and the override
    guard.on_rollback sets), and it ends with finite weights; steps 4-5 of the first
    timeline are set aside, not trained twice."""
    steps = 8
    cfg = tiny(tmp_path, f"trainer.total_steps={steps}", "trainer.checkpoint_every=2",
               "trainer.keep_checkpoints=1", "wandb.mode=offline", "learner.lr=1e-4",
               'guard.on_rollback.overrides=["learner.max_grad_norm=0.5"]')

    def poison(learner):
        with torch.no_grad():
            for param in learner.model.parameters():
                param.fill_(float("nan"))

    poisoned = []

    def inject(step, system):
        if step == 4 and not poisoned:
            poisoned.append(ray_cluster.get(system.learner.__ray_call__.remote(poison),
                                            timeout=60))

    run_dir = train(cfg, after_step=inject)
    metrics = assert_each_group_trained_once(run_dir, steps, cfg, tiny_assets.data /
                                             "train.parquet")
    assert metrics[-1]["guard/rollbacks"] == 1
    assert [m["learner/lr"] for m in metrics] == [1e-4] * 4 + [5e-5] * 4
    assert "goes on from step 4 with learner.lr=5e-05, learner.max_grad_norm=0.5" in \
        capsys.readouterr().out
    assert all(torch.isfinite(torch.tensor(m["learner/loss"])) for m in metrics)
    undone = rows(run_dir / "metrics.undone.jsonl")
    assert [(m["step"], m["rollback"]) for m in undone] == [(4, 1), (5, 1)]
    assert not torch.isfinite(torch.tensor(undone[-1]["learner/loss"]))
    assert [b["step"] for b in rows(run_dir / "batches.undone.jsonl")] == [4, 5]
    from safetensors.torch import load_file

    last = max((run_dir / "checkpoints").glob("step*"))
    assert last.name == "step000007"
    weights = load_file(next((last / "model").glob("*.safetensors")))
    assert all(torch.isfinite(w).all() for w in weights.values())
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    assert [r["step"] for r in history(run_file)] == [0, 1, 2, 3, 4, 5, 4, 5, 6, 7]


@pytest.fixture(scope="module")
def learner_killed_run(ray_cluster, tiny_assets, tmp_path_factory):
    """Six steps, a checkpoint every two (0-based steps 1, 3, 5). The learner is killed
    after step 2, so step 3 finds it gone and the run goes on from the checkpoint of step
    1; then the queue is killed after step 4 and the run goes on from that of step 3."""
    root = tmp_path_factory.mktemp("learner-killed")
    cfg = tiny(root, "trainer.total_steps=6", "trainer.checkpoint_every=2",
               "wandb.mode=offline", "guard.action=warn")  # keep_checkpoints alone prunes
    killed = []

    def inject(step, system):
        if (step, len(killed)) in ((2, 0), (4, 1)):
            killed.append(system.learner if step == 2 else system.queue)
            ray_cluster.kill(killed[-1], no_restart=True)

    return train(cfg, after_step=inject), cfg, killed


def test_a_killed_learner_or_queue_is_rebuilt_from_the_last_checkpoint(learner_killed_run,
                                                                       tiny_assets):
    run_dir, cfg, killed = learner_killed_run
    assert len(killed) == 2
    metrics = assert_each_group_trained_once(run_dir, 6, cfg, tiny_assets.data /
                                             "train.parquet")
    assert metrics[-1]["trainer/restarts"] == 2
    assert [m["policy_version"] for m in metrics] == list(range(1, 7))
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")  # the same W&B run
    logged = [r["step"] for r in history(run_file)]
    assert logged == [0, 1, 2, 2, 3, 4, 4, 5]  # steps trained twice, plotted at their step
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step000003", "step000005"]


def test_resume_takes_the_checkpoint_before_a_cut_one_and_says_so(learner_killed_run,
                                                                  tiny_assets, tmp_path,
                                                                  capsys):
    original, cfg, _ = learner_killed_run
    run_dir = tmp_path / original.name
    shutil.copytree(original, run_dir)
    state = run_dir / "checkpoints" / "step000005" / "state.json"
    state.write_text(state.read_text()[:40])
    assert cli.main(["train", "conf/tiny.yaml", "trainer.total_steps=7",
                     f"trainer.resume_from={run_dir}", "trainer.checkpoint_every=2",
                     "eval.every=0", "wandb.mode=offline"]) == 0
    out = capsys.readouterr().out
    assert f"skipped incomplete checkpoint {state.parent} (state.json unreadable" in out
    assert f"resuming from {run_dir / 'checkpoints' / 'step000003'} (step 3)" in out
    metrics = assert_each_group_trained_once(run_dir, 7, cfg, tiny_assets.data /
                                             "train.parquet")
    assert [m["policy_version"] for m in metrics] == list(range(1, 8))
    run_files = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 2 and len({f.name for f in run_files}) == 1  # resumed by id


def test_resume_with_another_group_mapping_is_refused(learner_killed_run, capsys):
    run_dir, _, _ = learner_killed_run
    assert cli.main(["train", "conf/tiny.yaml", f"trainer.resume_from={run_dir}",
                     "trainer.groups_per_step=4"]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "trainer.groups_per_step=4 (the checkpoint has 8)" in err


def test_the_run_survives_losing_every_simulator_replica(ray_cluster, tiny_assets,
                                                         tmp_path):
    steps = 6
    cfg = tiny(tmp_path, f"trainer.total_steps={steps}", "search.timeout_s=3",
               "search.retries=1")

    killed = set()

    def replicas() -> set[str]:
        return {a["name"] for a in ray_cluster.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA::simulator#")}

    def inject(step, system):
        if step == 0:
            killed.update(replicas())
            assert killed
            for name in killed:
                ray_cluster.kill(ray_cluster.get_actor(name, namespace="serve"),
                                 no_restart=True)
        if step == 1:  # the rollout workers play on meanwhile, their searches failing
            wait_until(lambda: replicas() - killed and simulator_replicas() == 1, 180,
                       "a new simulator replica")

    run_dir = train(cfg, after_step=inject)
    metrics = assert_each_group_trained_once(run_dir, steps, cfg, tiny_assets.data /
                                             "train.parquet")
    assert sum(m["search/failed"] for m in metrics) > 0
    # the pool answers again: the new replica served before step 2 (a step's searches may
    # all have run in the step before, played ahead within the staleness bound)
    assert sum(m["search/queries"] for m in metrics[2:]) > 0
    assert metrics[-1]["search/failed"] == 0


def test_a_failed_run_on_a_joined_cluster_leaves_nothing_of_it(tiny_assets, tmp_path):
    """A worker killed (SIGKILL) with restarts turned off: the run stops with a message,
    and its actors, its Serve app and the Serve it started are gone from the cluster."""
    log = tmp_path / "train.log"
    with ray_head(resources={"simulator": 1}) as head:
        port = int(head.gcs_address.rsplit(":", 1)[1])
        processes = lambda name: [p for p in cluster_processes(head.temp_dir, port)
                                  if name in " ".join(_cmdline(p))]
        with open(log, "w") as out:
            driver = subprocess.Popen(
                [SIMSEARCH, "train", "conf/tiny.yaml",
                 f"trainer.ray_address={head.gcs_address}",
                 f"trainer.run_dir={tmp_path / 'runs'}", "trainer.total_steps=1000",
                 "trainer.checkpoint_every=0", "rollout.max_restarts=0"],
                cwd=ROOT, env=head.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "step 2/1000:" in log.read_text() or driver.poll() is not None,
                       600, "the second step")
            assert driver.poll() is None, log.read_text()[-4000:]
            (worker,) = processes("ray::RolloutWorker")
            assert processes("SimulatorServer") and processes("ServeController")
            worker.send_signal(signal.SIGKILL)
            assert driver.wait(timeout=300) == 1, log.read_text()[-4000:]
        finally:
            if driver.poll() is None:
                driver.kill()
        text = log.read_text()
        assert "simsearch: run stopped: rollout worker rollout-0 died" in text
        assert "rollout.max_restarts=0" in text
        wait_until(lambda: not any(processes(name) for name in SIMSEARCH_ACTORS), 60,
                   "the run's actors and Serve to go")


def _cmdline(proc) -> list[str]:
    import psutil

    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []
