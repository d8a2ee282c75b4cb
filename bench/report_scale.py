"""Tables, targets, JSON and the plot of ``bench/scale.py``."""

from __future__ import annotations

import json
from pathlib import Path

TARGETS = {"async_over_sync": 2.5, "engine_busy_async": 0.9, "scaling_efficiency": 0.9,
           "weight_sync_share_max": 0.05}


def run_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'engines':>7} {'eta':>3} {'intr':>4} {'bound':>9} {'late':>4} {'model':>5} "
          f"{'traj/s':>8} {'step s':>7} "
          f"{'busy':>5} {'occ':>5} {'lrn idle':>8} {'sync %':>6} {'in flight':>9} "
          f"{'turns':>5} {'max':>3} {'cpu ms/turn':>11} {'cores':>5}")
    for r in rows:
        print("cpu ms per turn: " + ", ".join(f"{role} {ms:.2f}"
                                             for role, ms in r["cpu_ms_per_turn"].items()))
        print(f"{r['engines']:7d} {r['max_staleness']:3d} {'on' if r['interrupt'] else 'off':>4} "
              f"{r['bound']:>9} {r['over_bound_groups']:4d} {r['model']:>5} "
              f"{r['trajectories_per_s']:8.1f} {r['step_s']:7.2f} "
              f"{r['engine_busy']:5.2f} {r['occupancy']:5.2f} {r['learner_idle']:8.2f} "
              f"{100 * r['weight_sync_share']:6.1f} {r['in_flight_max']:9.0f} "
              f"{r['turns_mean']:5.2f} {r['turns_max']:3.0f} "
              f"{sum(r['cpu_ms_per_turn'].values()):11.2f} {r['cpu_cores']:5.2f}")


def figures(results: dict[str, list[dict]], best_setting: tuple[int, str]) -> dict:
    """The headline ratios against the targets."""
    eta, bound = best_setting
    out: dict = {"best_eta": eta, "best_bound": bound}
    stale = results.get("staleness", [])
    sync = [r for r in stale if r["max_staleness"] == 0]
    best = [r for r in stale
            if r["max_staleness"] == eta and r["interrupt"] and r["bound"] == bound]
    if sync and best:
        out["async_over_sync"] = best[0]["trajectories_per_s"] / sync[0]["trajectories_per_s"]
        out["engine_busy_async"] = best[0]["engine_busy"]
        out["engine_busy_sync"] = sync[0]["engine_busy"]
        out["cpu_ms_per_turn_async"] = best[0]["cpu_ms_per_turn"]
    for rule, scaling in scaling_by_bound(results).items():
        if len(scaling) > 1:
            base = baseline(scaling)
            one = base["trajectories_per_s"] / base["engines"]
            out.setdefault("scaling_baseline_engines", {})[rule] = base["engines"]
            out.setdefault("scaling_efficiency", {})[rule] = {
                r["engines"]: r["trajectories_per_s"] / (one * r["engines"]) for r in scaling}
            out.setdefault("engine_busy_scaling", {})[rule] = {
                r["engines"]: r["engine_busy"] for r in scaling}
    weights = results.get("weight_sync", [])
    if weights:
        names = [f"{r['model']} interrupt {'on' if r['interrupt'] else 'off'}"
                 for r in weights]
        out["weight_sync_share"] = {n: r["weight_sync_share"] for n, r in zip(names, weights)}
        out["engine_busy_by_push"] = {n: r["engine_busy"] for n, r in zip(names, weights)}
    return out


def plot(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    engines: list[int] = []
    for (rule, scaling), style in zip(scaling_by_bound(results).items(), ("o-", "s-")):
        engines = sorted(set(engines) | {r["engines"] for r in scaling})
        base = baseline(scaling)
        per_engine = base["trajectories_per_s"] / base["engines"]
        left.plot([r["engines"] for r in scaling], [r["trajectories_per_s"] for r in scaling],
                  style, label=f"queue.bound={rule}")
        left.plot([r["engines"] for r in scaling],
                  [per_engine * r["engines"] for r in scaling], ":", color="grey",
                  label=f"ideal ({rule})")
    if engines:
        left.set_xscale("log", base=2)
        left.set_yscale("log", base=2)
        left.set_xticks(engines, [str(e) for e in engines])
        left.set(xlabel="policy engines", ylabel="trajectories / modelled s",
                 title="Scaling (per-engine load fixed)")
        left.legend()
    stale = results.get("staleness", [])
    for interrupt, rule in sorted({(r["interrupt"], r["bound"]) for r in stale
                                   if r["max_staleness"]}, reverse=True):
        rows = sorted([r for r in stale if (r["interrupt"], r["bound"]) == (interrupt, rule)
                       or r["max_staleness"] == 0], key=lambda r: r["max_staleness"])
        right.plot([r["max_staleness"] for r in rows], [r["engine_busy"] for r in rows],
                   "o-" if interrupt else "s--",
                   label=f"interruptible {'on' if interrupt else 'off'}, {rule}")
    right.set(xlabel="queue.max_staleness", ylabel="engine busy fraction", ylim=(0, 1.05),
              title="Engine busy fraction")
    if right.lines:
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def baseline(scaling: list[dict]) -> dict:
    """The run the ideal line starts from: the fewest engines with as many engines per
    simulator replica as the largest run (fewer engines than that still get a whole
    replica: more simulator per engine, faster searches), else the fewest engines."""
    ratio = scaling[-1]["engines"] / scaling[-1]["simulator_replicas"]
    same = [r for r in scaling[:-1] if r["engines"] / r["simulator_replicas"] == ratio]
    return same[0] if same else scaling[0]


def scaling_by_bound(results: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The scaling section's runs per queue.bound, by engine count."""
    out: dict[str, list[dict]] = {}
    for r in sorted(results.get("scaling", []), key=lambda r: r["engines"]):
        out.setdefault(r["bound"], []).append(r)
    return out


def report(results: dict[str, list[dict]], conf: dict, best_setting: tuple[int, str],
           out_dir: Path) -> dict:
    for name, rows in results.items():
        run_table(name, rows)
    heads = figures(results, best_setting)
    print("\nfigures against targets " + json.dumps(TARGETS))
    print(json.dumps(heads, indent=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"results": results, "figures": heads, "targets": TARGETS, "conf": conf}
    (out_dir / "scale.json").write_text(json.dumps(data, indent=2))
    print(f"wrote {out_dir / 'scale.json'}")
    plot(results, out_dir / "scale.png")
    return data
