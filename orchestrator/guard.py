"""The collapse guard: whether a run's training has gone wrong, read from its steps' metrics.

Pure: `check(rows, conf)` takes the metrics of the steps so far (``metrics.jsonl``'s rows
of the current timeline) and returns a Verdict: each signal's value (logged as
``guard/<signal>``), the signals that fire and the first step of the trouble, so that a
rollback restores the newest checkpoint taken before it. Keeping no state of its own, the
guard reads the same after a resume or a rollback (the rows are rewound with the run).

Signals (thresholds in ``GuardConf``):

- nonfinite: the loss or the gradient norm is NaN or infinite (fires at once);
- reward: the moving average of the training reward below `reward_fraction` of its best
  for `reward_patience` steps in a row;
- entropy: the moving average of the token entropy outside [entropy_low, entropy_high]
  times its mean over the first `window` steps;
- no_answer: the moving share of episodes that end without an answer above a bound;
- truncated: the moving share of episodes cut at the turn's token limit above a bound;
- logprob_diff: the moving mean engine/learner logprob difference above a bound (a
  train/inference mismatch).

All but nonfinite wait until `window` steps have run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from conf.schema import GuardConf

SIGNALS = ("nonfinite", "reward", "entropy", "no_answer", "truncated", "logprob_diff")
# the metrics the signals read
KEYS = ("step", "reward/mean", "learner/entropy", "learner/loss", "learner/grad_norm",
        "episode/end_answer", "episode/end_turn_tokens", "learner/logprob_diff")


@dataclass
class Verdict:
    values: dict[str, float] = field(default_factory=dict)  # guard/<signal> per signal
    fired: dict[str, str] = field(default_factory=dict)  # signal -> why, in words
    first_bad_step: int | None = None  # the first step of the trouble, if any fired

    @property
    def healthy(self) -> bool:
        return not self.fired


def horizon(conf: GuardConf) -> int:
    """At most how many steps before the step a signal fires at its trouble began (the
    reward's: a window, then its patience)."""
    return conf.window + conf.reward_patience


def check(rows: list[dict], conf: GuardConf) -> Verdict:
    """The verdict after the last of `rows` (one per step, in step order)."""
    verdict = Verdict()
    if not rows:
        return verdict
    for name, (value, why, since) in _signals(rows, conf).items():
        verdict.values[name] = value
        if why:
            verdict.fired[name] = why
            first = since if verdict.first_bad_step is None else min(since,
                                                                     verdict.first_bad_step)
            verdict.first_bad_step = first
    return verdict


def _signals(rows: list[dict], conf: GuardConf) -> dict[str, tuple[float, str, int]]:
    """name -> (value, why it fires or "", the step its trouble began)."""
    step = int(rows[-1]["step"])
    out = {"nonfinite": _nonfinite(rows[-1], step)}
    if len(rows) < conf.window:
        return out
    out["reward"] = _reward(rows, conf)
    out["entropy"] = _entropy(rows, conf)
    for name, key, bound, flip in (
            ("no_answer", "episode/end_answer", conf.max_no_answer, True),
            ("truncated", "episode/end_turn_tokens", conf.max_truncated, False),
            ("logprob_diff", "learner/logprob_diff", conf.max_logprob_diff, False)):
        values = [(1.0 - v if flip else v) for v in _series(rows, key)]
        out[name] = _above(values, rows, conf.window, bound, name)
    return out


def _nonfinite(row: dict, step: int) -> tuple[float, str, int]:
    bad = [key for key in ("learner/loss", "learner/grad_norm")
           if key in row and not math.isfinite(row[key])]
    return float(bool(bad)), f"{' and '.join(bad)} not finite at step {step}" if bad \
        else "", step


def _reward(rows: list[dict], conf: GuardConf) -> tuple[float, str, int]:
    """Moving average over its best so far; fires after reward_patience low steps."""
    averages = _moving(_series(rows, "reward/mean"), conf.window)
    best, low_since, ratio = 0.0, None, 1.0
    for i, average in enumerate(averages):
        best = max(best, average)
        ratio = average / best if best > conf.reward_floor else 1.0
        if ratio >= conf.reward_fraction:
            low_since = None
        elif low_since is None:
            low_since = i
    if low_since is None or len(averages) - low_since < conf.reward_patience:
        return ratio, "", 0
    since = _step_of(rows, low_since)
    return ratio, (f"reward's {conf.window}-step average {averages[-1]:.3f} below "
                   f"{conf.reward_fraction} of its best {best:.3f} since step {since}"), since


def _entropy(rows: list[dict], conf: GuardConf) -> tuple[float, str, int]:
    """Moving average of the entropy over its mean in the first `window` steps."""
    series = _series(rows, "learner/entropy")
    start = sum(series[:conf.window]) / conf.window
    if start <= 0:
        return 1.0, "", 0
    ratios = [a / start for a in _moving(series, conf.window)]
    outside = [not conf.entropy_low <= r <= conf.entropy_high for r in ratios]
    if not outside[-1]:
        return ratios[-1], "", 0
    begin = len(outside) - 1
    while begin > 0 and outside[begin - 1]:
        begin -= 1
    since = _step_of(rows, begin)
    return ratios[-1], (f"entropy's {conf.window}-step average at {ratios[-1]:.2f} of its "
                        f"start, outside [{conf.entropy_low}, {conf.entropy_high}], since "
                        f"step {since}"), since


def _above(values: list[float], rows: list[dict], window: int, bound: float,
           name: str) -> tuple[float, str, int]:
    averages = _moving(values, window)
    if averages[-1] <= bound:
        return averages[-1], "", 0
    begin = len(averages) - 1
    while begin > 0 and averages[begin - 1] > bound:
        begin -= 1
    since = _step_of(rows, begin)
    return averages[-1], (f"{name}'s {window}-step average {averages[-1]:.3f} above "
                          f"{bound} since step {since}"), since


def _series(rows: list[dict], key: str) -> list[float]:
    return [float(row.get(key, 0.0)) for row in rows]


def _moving(values: list[float], window: int) -> list[float]:
    """Trailing averages over `window` values, one per value from the window-th on."""
    return [sum(values[i - window + 1:i + 1]) / window
            for i in range(window - 1, len(values))]


def _step_of(rows: list[dict], average_index: int) -> int:
    """The step whose moving average is `average_index`: trouble visible there may have
    begun anywhere in its window, so its first step."""
    return int(rows[average_index]["step"])
