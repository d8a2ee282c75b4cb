"""Tables, targets, JSON and the plot of ``bench/scale.py``."""

from __future__ import annotations

import json
from pathlib import Path

TARGETS = {"async_over_sync": 2.5, "engine_busy_async": 0.9, "scaling_efficiency": 0.9,
           "weight_sync_share_max": 0.05}


def run_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'engines':>7} {'eta':>3} {'intr':>4} {'model':>5} {'traj/s':>8} {'step s':>7} "
          f"{'busy':>5} {'occ':>5} {'lrn idle':>8} {'sync %':>6} {'in flight':>9} "
          f"{'turns':>5} {'max':>3} {'cpu ms/turn':>11} {'cores':>5}")
    for r in rows:
        print("cpu ms per turn: " + ", ".join(f"{role} {ms:.2f}"
                                             for role, ms in r["cpu_ms_per_turn"].items()))
        print(f"{r['engines']:7d} {r['max_staleness']:3d} {'on' if r['interrupt'] else 'off':>4} "
              f"{r['model']:>5} {r['trajectories_per_s']:8.1f} {r['step_s']:7.2f} "
              f"{r['engine_busy']:5.2f} {r['occupancy']:5.2f} {r['learner_idle']:8.2f} "
              f"{100 * r['weight_sync_share']:6.1f} {r['in_flight_max']:9.0f} "
              f"{r['turns_mean']:5.2f} {r['turns_max']:3.0f} "
              f"{sum(r['cpu_ms_per_turn'].values()):11.2f} {r['cpu_cores']:5.2f}")


def figures(results: dict[str, list[dict]], eta: int) -> dict:
    """The headline ratios against the targets."""
    out: dict = {"best_eta": eta}
    stale = results.get("staleness", [])
    sync = [r for r in stale if r["max_staleness"] == 0]
    best = [r for r in stale if r["max_staleness"] == eta and r["interrupt"]]
    if sync and best:
        out["async_over_sync"] = best[0]["trajectories_per_s"] / sync[0]["trajectories_per_s"]
        out["engine_busy_async"] = best[0]["engine_busy"]
        out["engine_busy_sync"] = sync[0]["engine_busy"]
        out["cpu_ms_per_turn_async"] = best[0]["cpu_ms_per_turn"]
    scaling = sorted(results.get("scaling", []), key=lambda r: r["engines"])
    if len(scaling) > 1:
        one = scaling[0]["trajectories_per_s"] / scaling[0]["engines"]
        out["scaling_efficiency"] = {r["engines"]: r["trajectories_per_s"] / (one * r["engines"])
                                     for r in scaling}
    weights = results.get("weight_sync", [])
    if weights:
        names = [f"{r['model']} interrupt {'on' if r['interrupt'] else 'off'}" for r in weights]
        out["weight_sync_share"] = {n: r["weight_sync_share"] for n, r in zip(names, weights)}
        out["engine_busy_by_push"] = {n: r["engine_busy"] for n, r in zip(names, weights)}
    return out


def plot(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    scaling = sorted(results.get("scaling", []), key=lambda r: r["engines"])
    if scaling:
        engines = [r["engines"] for r in scaling]
        per_engine = scaling[0]["trajectories_per_s"] / engines[0]
        left.plot(engines, [r["trajectories_per_s"] for r in scaling], "o-", label="measured")
        left.plot(engines, [per_engine * e for e in engines], "--", label="ideal")
        left.set_xscale("log", base=2)
        left.set_yscale("log", base=2)
        left.set_xticks(engines, [str(e) for e in engines])
        left.set(xlabel="policy engines", ylabel="trajectories / modelled s",
                 title="Scaling (per-engine load fixed)")
        left.legend()
    for interrupt, style in ((True, "o-"), (False, "s--")):
        rows = sorted([r for r in results.get("staleness", [])
                       if r["interrupt"] == interrupt or r["max_staleness"] == 0],
                      key=lambda r: r["max_staleness"])
        if any(r["max_staleness"] for r in rows):  # eta 0 alone is no series
            right.plot([r["max_staleness"] for r in rows], [r["engine_busy"] for r in rows],
                       style, label=f"interruptible {'on' if interrupt else 'off'}")
    right.set(xlabel="queue.max_staleness", ylabel="engine busy fraction", ylim=(0, 1.05),
              title="Engine busy fraction")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def report(results: dict[str, list[dict]], conf: dict, eta: int, out_dir: Path) -> dict:
    for name, rows in results.items():
        run_table(name, rows)
    heads = figures(results, eta)
    print("\nfigures against targets " + json.dumps(TARGETS))
    print(json.dumps(heads, indent=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"results": results, "figures": heads, "targets": TARGETS, "conf": conf}
    (out_dir / "scale.json").write_text(json.dumps(data, indent=2))
    print(f"wrote {out_dir / 'scale.json'}")
    plot(results, out_dir / "scale.png")
    return data
