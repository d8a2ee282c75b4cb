"""What the training driver does with the collapse guard's verdicts (``orchestrator.guard``):
log its values, warn, stop the run, or roll it back to the newest checkpoint taken before
the trouble began, setting the undone steps' lines aside, and keep the checkpoints such a
rollback may need."""

from __future__ import annotations

from dataclasses import replace

from actors.errors import RunStopped
from conf.loader import with_overrides
from conf.schema import Config
from orchestrator.guard import KEYS, Verdict, check, horizon


class GuardRollback(Exception):
    """The guard fired at `step` with action rollback."""

    def __init__(self, step: int, verdict: Verdict):
        super().__init__(f"at step {step}: {'; '.join(verdict.fired.values())}")
        self.step, self.verdict = step, verdict


def roll_back(cfg: Config, logger, state, rollback: GuardRollback, origin):
    """The checkpoint to go on from (the newest before the trouble began; None: from the
    start) and the config to go on with; the undone steps' lines move aside."""
    from orchestrator.checkpoint import latest_checkpoint

    guard, done = cfg.guard, state.faults.rollbacks
    if done >= guard.max_rollbacks:
        raise RunStopped(f"the guard fired {rollback}; guard.max_rollbacks="
                         f"{guard.max_rollbacks} rollbacks are used")
    state.faults.rollbacks = done + 1
    first = rollback.verdict.first_bad_step
    resume = latest_checkpoint(logger.run_dir, before=first)
    if resume is None and origin is not None and origin.step < first:
        resume = origin
    back_to = resume.step if resume else -1
    cfg = on_rollback(cfg)
    print(f"simsearch: guard: rollback {done + 1}/{guard.max_rollbacks} {rollback}; "
          f"steps {back_to + 1}-{rollback.step} are undone (their lines move to "
          f"metrics.undone.jsonl and batches.undone.jsonl) and the run goes on from step "
          f"{back_to + 1} with learner.lr={cfg.learner.lr:g}"
          f"{''.join(f', {item}' for item in guard.on_rollback.overrides)}", flush=True)
    logger.rewind(back_to, rollback=done + 1)
    return resume, cfg


def on_rollback(cfg: Config) -> Config:
    """The config after a rollback: guard.on_rollback's learning-rate scale and overrides."""
    change = cfg.guard.on_rollback
    cfg = with_overrides(cfg, change.overrides)
    return replace(cfg, learner=replace(cfg.learner, lr=cfg.learner.lr * change.lr_scale))


def guard_rows(rows: list[dict]) -> list[dict]:
    return [{key: row[key] for key in KEYS if key in row} for row in rows]


def watch(cfg: Config, state, metrics: dict, step: int, logger) -> Verdict:
    """The guard's verdict after `step` on the run's history (state.history, to which the
    step is added); its values join the step's metrics, and each signal that starts firing
    is a log line and a W&B alert."""
    guard = cfg.guard
    if guard.action == "off":
        return Verdict()
    state.history.append(guard_rows([dict(metrics, step=step)])[0])
    verdict = check(state.history, guard)
    metrics.update({f"guard/{name}": value for name, value in verdict.values.items()})
    for name in verdict.fired.keys() - state.firing:
        print(f"simsearch: guard: {verdict.fired[name]} (guard.action={guard.action})",
              flush=True)
        logger.alert(f"simsearch guard: {name} at step {step}", verdict.fired[name])
    state.firing = set(verdict.fired)
    return verdict


def act(cfg: Config, verdict: Verdict, step: int) -> None:
    """Stop or roll back on an unhealthy verdict, as guard.action says."""
    if verdict.healthy or cfg.guard.action in ("warn", "off"):
        return
    if cfg.guard.action == "stop":
        raise RunStopped(f"the guard stopped the run at step {step}: "
                         f"{'; '.join(verdict.fired.values())}")
    raise GuardRollback(step, verdict)


def guard_hold(cfg: Config, step: int) -> int | None:
    """Checkpoints after this step (and the newest before) are kept past
    trainer.keep_checkpoints: a guard rollback may date its trouble that far back."""
    return None if cfg.guard.action in ("off", "warn", "stop") else step - horizon(cfg.guard)
