"""Training checkpoints: what a run needs to continue as if it had not stopped.

``<run dir>/checkpoints/stepNNNNNN/`` holds the learner's part (``model/`` as a full HF
folder, ``optimizer.pt``, ``learner.json`` with the policy version) and ``state.json``:
the step, the curriculum's state and the queue's (its version and which groups, i.e.
positions in the question stream, were consumed). ``simsearch train ...
trainer.resume_from=PATH`` takes a checkpoint folder or a run directory (its latest
checkpoint) and continues with the next step and the same next batch of questions.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from conf.loader import ConfigError


@dataclass(frozen=True)
class Resume:
    path: Path
    step: int  # the last step the checkpoint includes
    curriculum: dict
    queue: dict

    @property
    def model_path(self) -> str:
        return str(self.path / "model")

    @property
    def version(self) -> int:
        return self.step + 1


def save_checkpoint(run_dir: Path, step: int, learner, queue, curriculum, keep: int,
                    timeout_s: float) -> Path:
    import ray

    path = run_dir / "checkpoints" / f"step{step:06d}"
    path.mkdir(parents=True, exist_ok=True)
    ray.get(learner.save_checkpoint.remote(str(path)), timeout=timeout_s)
    state = {"step": step, "curriculum": curriculum.state_dict(),
             "queue": ray.get(queue.state_dict.remote(), timeout=timeout_s)}
    (path / "state.json").write_text(json.dumps(state))
    for old in sorted((run_dir / "checkpoints").glob("step*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def find_checkpoint(path: str) -> Resume:
    """A checkpoint folder, or the latest complete one under a run directory."""
    root = Path(path).expanduser()
    candidates = [root] if (root / "state.json").exists() else sorted(
        p for p in (root / "checkpoints").glob("step*") if (p / "state.json").exists())
    if not candidates:
        raise ConfigError(f"trainer.resume_from={path}: no checkpoint there (expected "
                          f"state.json, or checkpoints/step*/state.json)")
    chosen = candidates[-1]
    state = json.loads((chosen / "state.json").read_text())
    return Resume(chosen, int(state["step"]), state["curriculum"], state["queue"])
