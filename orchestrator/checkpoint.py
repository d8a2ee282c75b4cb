"""Training checkpoints: what a run needs to continue as if it had not stopped.

``<run dir>/checkpoints/stepNNNNNN/`` holds the learner's part (``model/`` as a full HF
folder, ``optimizer-rank*.pt``, ``learner.json`` with the policy version) and ``state.json``:
the step, the queue's state (its version and which groups, i.e. positions
in the question stream, were consumed), the run's fault counts, and the settings that map
group indices to questions (``MAPPING_KEYS`` and a fingerprint of the training data). A
checkpoint is written into a hidden ``.partial-*`` folder and renamed into place when
complete, so a crash while writing never leaves a ``step*`` folder that looks whole.

``trainer.resume_from`` takes a run directory (the run goes on in it, from its newest
complete checkpoint, skipping and naming incomplete ones; from the start if it has none) or
one checkpoint folder (a new run directory starts from it). Resuming with other mapping
settings or other training data is a ConfigError naming them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conf.loader import ConfigError
from conf.schema import Config

MAPPING_KEYS = ("trainer.groups_per_step", "rollout.group_size", "trainer.seed")
LEARNER_FILES = ("learner.json", "model/config.json")


@dataclass(frozen=True)
class Resume:
    path: Path
    step: int  # the last step the checkpoint includes
    queue: dict
    mapping: dict = field(default_factory=dict)
    faults: dict = field(default_factory=dict)

    @property
    def model_path(self) -> str:
        return str(self.path / "model")

    @property
    def version(self) -> int:
        return self.step + 1


class IncompleteCheckpoint(ValueError):
    pass


def group_mapping(cfg: Config, train_path: str) -> dict:
    """The settings that decide which question group g trains on, and the data's hash."""
    values = {"trainer.groups_per_step": cfg.trainer.groups_per_step,
              "rollout.group_size": cfg.rollout.group_size, "trainer.seed": cfg.trainer.seed}
    return dict(values, data=data_fingerprint(train_path))


def data_fingerprint(path: str) -> str:
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def check_mapping(resume: Resume, mapping: dict) -> None:
    """ConfigError naming each setting (or the training data) that differs from the
    checkpoint's: the same group indices would train other questions."""
    if not resume.mapping:
        return  # written before checkpoints recorded it
    changed = [f"{key}={mapping[key]} (the checkpoint has {resume.mapping.get(key)})"
               for key in MAPPING_KEYS if resume.mapping.get(key) != mapping[key]]
    if resume.mapping.get("data") != mapping["data"]:
        changed.append("data.train_path: other training data than the checkpoint's")
    if changed:
        raise ConfigError(f"trainer.resume_from={resume.path}: resuming with "
                          f"{'; '.join(changed)} would map groups to other questions; "
                          f"set them back or start a new run")


def save_checkpoint(run_dir: Path, state: dict, write_learner, keep: int,
                    hold_after: int | None = None) -> Path:
    """Write checkpoint state["step"]: write_learner(folder) saves the learner's part, then
    state.json; all in a partial folder renamed into place when complete. The newest
    `keep` are kept; with hold_after, also those after that step and the newest at or
    before it (a rollback of the collapse guard may go back that far)."""
    root = run_dir / "checkpoints"
    final = root / f"step{state['step']:06d}"
    partial = root / f".partial-{final.name}-{uuid.uuid4().hex[:6]}"
    partial.mkdir(parents=True)
    write_learner(partial)
    _write_synced(partial / "state.json", json.dumps(state))
    # folders of later steps are from steps undone by a restart (incomplete ones included)
    for undone in (p for p in root.glob("step*") if p.name >= final.name):
        shutil.rmtree(undone)
    os.replace(partial, final)
    for old in sorted(root.glob("step*"))[:-keep]:
        if old not in _held(root, hold_after):
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".partial-*"):  # left by a crash while writing
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _held(root: Path, after: int | None) -> list[Path]:
    if after is None:
        return []
    folders = sorted(root.glob("step*"))
    return [p for p in folders if _step_of(p) <= after][-1:] + \
        [p for p in folders if _step_of(p) > after]


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def load_checkpoint(path: Path) -> Resume:
    """The checkpoint in folder `path`; IncompleteCheckpoint saying what is wrong."""
    try:
        state = json.loads((path / "state.json").read_text())
        resume = Resume(path, int(state["step"]), state["queue"],
                        state.get("mapping", {}), state.get("faults", {}))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IncompleteCheckpoint(f"state.json unreadable ({type(err).__name__})") from None
    missing = [name for name in LEARNER_FILES if not (path / name).exists()]
    if missing or not list(path.glob("optimizer-rank*.pt")):
        raise IncompleteCheckpoint(f"missing {', '.join(missing) or 'optimizer-rank*.pt'}")
    return resume


def _step_of(folder: Path) -> int:
    return int(folder.name[len("step"):])


def latest_checkpoint(run_dir: Path, before: int | None = None) -> Resume | None:
    """The newest complete checkpoint of a run directory (of a step before `before`, if
    given; None if none); prints the incomplete ones it skipped."""
    root = run_dir / "checkpoints"
    partial = sorted(root.glob(".partial-*"))
    if partial:
        print(f"simsearch: skipped {len(partial)} checkpoint(s) whose writing was cut "
              f"short: {', '.join(p.name for p in partial)}", flush=True)
    folders = [p for p in root.glob("step*") if before is None or _step_of(p) < before]
    for path in sorted(folders, reverse=True):
        try:
            resume = load_checkpoint(path)
        except IncompleteCheckpoint as why:
            print(f"simsearch: skipped incomplete checkpoint {path} ({why})", flush=True)
            continue
        print(f"simsearch: resuming from {path} (step {resume.step})", flush=True)
        return resume
    return None


def resume_point(path: str) -> tuple[Resume | None, Path | None]:
    """(checkpoint, run directory to go on in) for trainer.resume_from: a run directory
    gives its newest complete checkpoint (None: from the start) and itself; a checkpoint
    folder gives that checkpoint and no directory (a new run starts from it)."""
    root = Path(path).expanduser()
    if (root / "state.json").exists():
        try:
            return load_checkpoint(root), None
        except IncompleteCheckpoint as why:
            raise ConfigError(f"trainer.resume_from={path}: incomplete checkpoint ({why}); "
                              f"give its run directory to take the newest complete "
                              f"one") from None
    if (root / "checkpoints").is_dir() or (root / "metrics.jsonl").exists():
        resume = latest_checkpoint(root)
        if resume is None:
            print(f"simsearch: {root} has no complete checkpoint; the run starts over in "
                  f"it", flush=True)
        return resume, root
    raise ConfigError(f"trainer.resume_from={path}: neither a run directory (with "
                      f"checkpoints/ or metrics.jsonl) nor a checkpoint (with state.json)")
