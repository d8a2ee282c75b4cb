"""Timed stand-ins for the GPU parts, run by the real Ray actors, queue, Serve pool and
driver (``bench/scale.py``).

- ``TimedRolloutWorker``: the real rollout worker (episode loop, streaming turns, version
  lock, queue calls, scoring) on a ``TimedEngine`` instead of vLLM.
- ``TimedSimulatorServer``: the real Serve replica class on a ``TimedEngine``.
- ``TimedLearner``: a learner step of ``c + d * tokens`` seconds and a weight push of
  ``model bytes / bandwidth`` (modelled on the engines' side, as an NCCL broadcast that
  every engine receives at once).

``timed_parts`` binds the timing settings into subclasses for ``wiring.Parts``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from actors.rollout_worker import RolloutWorker
from actors.simulator import SimulatorServer
from timed_engine import EngineModel, TimedEngine, Workload


@dataclass
class LearnerModel:
    """A learner step of `step_s + per_token_s * tokens` modelled seconds. Defaults: a 3B
    policy on 24 H100s (FSDP): about 30 GFLOP per token (forward and backward, and a
    forward for proximal logprobs) at 40% of 989 TFLOP/s is 13k tokens/s per GPU, 320k on
    24; 0.5 s for the optimizer step and gathers."""

    step_s: float = 0.5
    per_token_s: float = 3.1e-6
    time_scale: float = 1.0


class TimedRolloutWorker(RolloutWorker):
    engine_model = EngineModel()
    workload = Workload()

    def start_engine(self, conf, model_path: str, seed: int, weight_transfer: bool = False):
        return TimedEngine(self.engine_model, self.workload, model_path, "policy", seed)


class TimedSimulatorServer(SimulatorServer):
    engine_model = EngineModel()
    workload = Workload()

    def start_engine(self, conf, model_path: str, seed: int):
        return TimedEngine(self.engine_model, self.workload, model_path, "simulator", seed)


class TimedLearner:
    """The learner's interface to the driver, with modelled durations."""

    model = LearnerModel()

    def __init__(self, conf, model_path: str, weights_dir: str, seed: int,
                 resume_dir: str = "", rank: int = 0, world_size: int = 1,
                 temperature: float = 1.0):
        self.model_path, self.weights_dir, self.version = model_path, weights_dir, 0

    def train_step(self, groups: list) -> dict[str, float]:
        tokens = sum(len(t.token_ids) for group in groups for t in group)
        seconds = self.model.step_s + self.model.per_token_s * tokens
        time.sleep(seconds * self.model.time_scale)
        self.version += 1
        return {"learner/tokens": float(tokens), "learner/modelled_s": seconds}

    def publish(self) -> str:
        """The weights' folder: the engines' modelled load stands for the transfer."""
        return self.model_path

    def save_checkpoint(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)

    def node_address(self) -> str:
        return "127.0.0.1:0"


def timed_parts(engine: EngineModel, workload: Workload, learner: LearnerModel,
                simulator_engine: EngineModel | None = None):
    """wiring.Parts of stand-in classes carrying these settings. They travel to the Ray
    workers by value, so the workers need not find bench/ on their path."""
    import sys

    from ray import cloudpickle

    from orchestrator.wiring import Parts

    for module in (__name__, TimedEngine.__module__):
        cloudpickle.register_pickle_by_value(sys.modules[module])

    def bind(base: type, **attrs) -> type:
        return type(base.__name__, (base,), attrs)

    sim = simulator_engine or replace(engine, weight_load_s=0.0)
    return Parts(rollout_worker=bind(TimedRolloutWorker, engine_model=engine,
                                     workload=workload),
                 learner=bind(TimedLearner, model=learner),
                 simulator=bind(TimedSimulatorServer, engine_model=sim, workload=workload))
