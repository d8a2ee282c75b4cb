"""How new weights reach the rollout engines, and where a replacement worker finds them.

``WeightPusher(version)`` moves the engines to the learner's weights as policy version
`version`: by NCCL broadcast from learner rank 0 once the group is open, else by an HF
checkpoint the learner saves and every engine reloads. ``on_disk()`` gives the latest
weights as a folder on disk with their version, which a replacement worker starts from.
A replacement cannot join an open NCCL group (its members are fixed when it opens), so after
the first one the pushes go by disk for the rest of the run.
"""

from __future__ import annotations

from conf.loader import ConfigError
from conf.schema import Config
from orchestrator.supervisor import call


def resolve_weight_sync(mode: str, learner_gpus: float, rollout_gpus: float) -> str:
    """'nccl' or 'disk' for learner.weight_sync = auto|disk|nccl: auto takes NCCL when
    both the learner ranks and the rollout workers hold GPUs."""
    on_gpus = learner_gpus > 0 and rollout_gpus > 0
    if mode == "auto":
        return "nccl" if on_gpus else "disk"
    if mode == "nccl" and not on_gpus:
        raise ConfigError("learner.weight_sync=nccl needs learner.num_gpus > 0 and "
                          "rollout.num_gpus > 0 (NCCL runs between GPUs); use auto or disk")
    return mode


class WeightPusher:
    """push(version) for one system; `rollout` is its WorkerSupervisor (or anything with
    ``workers`` and ``call_all``). Starts at (path, version): the weights the engines
    were started with."""

    def __init__(self, learner, rollout, timeout_s: float, path: str, version: int):
        self.learner, self.rollout, self.timeout_s = learner, rollout, timeout_s
        self.mode = "disk"
        self.path, self.version = path, version
        self.path_version = version  # the version the folder at `path` holds

    def open_nccl(self, cfg: Config, strict: bool) -> None:
        """Open the NCCL group with the engines; under weight_sync=auto (not strict) a group
        that fails to open leaves the pushes on disk."""
        import ray

        try:
            rank0 = getattr(self.learner, "actors", [self.learner])[0]
            master = ray.get(rank0.node_address.remote(), timeout=self.timeout_s)
            ray.get(self.learner.open_weight_transfer.remote(
                master, self.rollout.workers, cfg.rollout.engine.dtype, self.timeout_s),
                timeout=self.timeout_s)
            self.mode = "nccl"
        except Exception as err:
            if strict:
                raise
            print(f"simsearch: NCCL weight transfer did not start ({type(err).__name__}: "
                  f"{err}); weights go to the engines by disk", flush=True)

    def __call__(self, version: int) -> None:
        if self.mode == "nccl":
            call(self.learner.send_weights.remote(version), self.timeout_s,
                 "the learner's weight broadcast")
            self.version = version
            return
        self.path = call(self.learner.publish.remote(), self.timeout_s, "publishing weights")
        self.version = self.path_version = version  # before the loads: a worker replaced
        self.rollout.call_all("load_weights", self.path, version)  # now starts from them

    def on_disk(self) -> tuple[str, int]:
        """(folder, version) of the current weights, saved first if only NCCL has them."""
        if self.path_version != self.version:
            self.path = call(self.learner.publish.remote(), self.timeout_s,
                             "publishing weights")
            self.path_version = self.version
        return self.path, self.version

    def to_disk(self) -> None:
        """A worker was replaced: later pushes go by disk (see the module docstring)."""
        if self.mode == "nccl":
            print("simsearch: a rollout worker was replaced; weights go to the engines by "
                  "disk from now on", flush=True)
        self.mode = "disk"
