"""The table, JSON and plot of ``sim_vs_real``: each run's metrics reduced to its figures,
then mean and spread over seeds per setting, and the method's claims as comparisons."""

from __future__ import annotations

import statistics
from pathlib import Path

# (claim, setting, baseline): the first's final held-out EM with BM25 against the second's.
CLAIMS = (
    ("the simulator matches the real engine", "simulator", "bm25"),
    ("fine-tuning the simulator helps", "simulator", "prompt_only"),
    ("the noise curriculum helps", "simulator", "fixed_noise"),
)


def _last(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return values[-1] if values else None


def _sources(rows: list[dict]) -> list[str]:
    return sorted({key.split("/")[1] for row in rows for key in row
                   if key.startswith("eval/") and key.endswith("/em")})


def run_figures(run: dict) -> dict:
    """One run's figures: held-out EM with BM25 at the start, after each evaluation and
    at the end (per data source), EM with the simulator, and the cost columns."""
    rows, sources = run["rows"], _sources(run["rows"])
    start = next(row for row in rows if "start/eval/all/em" in row)
    bm25 = {s: {"start": start[f"start/eval/{s}/em"], "final": _last(rows, f"eval/{s}/em")}
            for s in sources}
    sim = run["simulator_eval"]
    simulator = {s: sim[s]["em"] for s in sim} if sim is not None else \
        {s: _last(rows, f"eval_simulator/{s}/em") for s in sources}
    curve = [(0, start["start/eval/all/em"])] + [
        (row["step"] + 1, row["eval/all/em"]) for row in rows if "eval/all/em" in row]
    train = [row for row in rows if "episode/search_calls_mean" in row]
    calls = [row["episode/search_calls_mean"] * run["episodes_per_step"] for row in train]
    tokens = [c * row.get("simulator/tokens_per_query", 0.0) for c, row in zip(calls, train)]
    simulated = run["simulated"]
    return {"setting": run["setting"], "seed": run["seed"], "command": run["command"],
            "train_s": sum(row.get("timing/step_s", 0.0) for row in rows),
            "run_dir": run["run_dir"], "bm25": bm25, "simulator": simulator, "curve": curve,
            "searches_per_question": _last(rows, "eval/all/searches"),
            "simulator_calls_per_step": statistics.fmean(calls) if simulated else 0.0,
            "simulated_tokens_per_step": statistics.fmean(tokens) if simulated else 0.0}


def spread(values: list[float]) -> dict:
    """Mean, standard deviation over seeds (0 for one), min and max."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values)
            if len(values) > 1 else 0.0, "min": min(values), "max": max(values),
            "n": len(values)}


def setting_summary(name: str, description: str, figures: list[dict]) -> dict:
    sources = figures[0]["bm25"]
    steps = [step for step, _ in figures[0]["curve"]]
    return {
        "setting": name, "description": description, "seeds": [f["seed"] for f in figures],
        "command": figures[0]["command"],
        "bm25": {s: {"start": spread([f["bm25"][s]["start"] for f in figures]),
                     "final": spread([f["bm25"][s]["final"] for f in figures]),
                     "gain": spread([f["bm25"][s]["final"] - f["bm25"][s]["start"]
                                     for f in figures])} for s in sources},
        "simulator": {s: spread([f["simulator"][s] for f in figures]) for s in sources},
        "curve": {"steps": steps, **{k: [spread([f["curve"][i][1] for f in figures])[k]
                                         for i in range(len(steps))]
                                     for k in ("mean", "min", "max")}},
        **{key: spread([f[key] for f in figures])["mean"] for key in (
            "searches_per_question", "simulator_calls_per_step",
            "simulated_tokens_per_step")},
    }


def claims(settings: dict[str, dict]) -> list[dict]:
    """Each claim whose two settings ran: the difference of their mean final held-out EM
    with BM25, and whether it lies within the seeds' spread (|diff| <= sd_a + sd_b)."""
    out = []
    for claim, name, baseline in CLAIMS:
        if name in settings and baseline in settings:
            a, b = (settings[n]["bm25"]["all"]["final"] for n in (name, baseline))
            diff = a["mean"] - b["mean"]
            out.append({"claim": claim, "setting": name, "baseline": baseline,
                        "difference": diff, "within_spread": abs(diff) <= a["sd"] + b["sd"]})
    return out


def assemble(runs: list[dict], descriptions: dict[str, str]) -> dict:
    """Runs (sim_vs_real.run_setting's dicts) -> {settings, claims, runs}; the settings in
    the order they first appear."""
    figures = [run_figures(run) for run in runs]
    names = list(dict.fromkeys(f["setting"] for f in figures))
    if not names:
        raise ValueError("no runs to compare")
    settings = {name: setting_summary(name, descriptions.get(name, name),
                                      [f for f in figures if f["setting"] == name])
                for name in names}
    return {"settings": settings, "claims": claims(settings), "runs": figures}


def _cell(s: dict) -> str:
    return f"{s['mean']:.3f}±{s['sd']:.3f}"


def print_table(result: dict) -> None:
    print(f"\n{'setting':12} {'seeds':>5} {'EM bm25':>12} {'1-hop':>12} {'2-hop':>12} "
          f"{'gain':>12} {'EM sim':>12} {'search/q':>8} {'sim/step':>8} {'tok/step':>8}")
    for name, s in result["settings"].items():
        hops = [s["bm25"].get(k, {}).get("final") for k in ("tinyworld_1hop", "tinyworld_2hop")]
        print(f"{name:12} {len(s['seeds']):5d} {_cell(s['bm25']['all']['final']):>12} "
              + " ".join(f"{_cell(h) if h else '-':>12}" for h in hops)
              + f" {_cell(s['bm25']['all']['gain']):>12} {_cell(s['simulator']['all']):>12}"
              f" {s['searches_per_question']:8.2f} {s['simulator_calls_per_step']:8.1f}"
              f" {s['simulated_tokens_per_step']:8.0f}")
    for c in result["claims"]:
        print(f"{c['claim']}: {c['setting']} - {c['baseline']} = {c['difference']:+.3f} "
              f"({'within' if c['within_spread'] else 'outside'} the seeds' spread)")
    for name, s in result["settings"].items():
        print(f"{name}: {s['command']}")


def plot(result: dict, path: Path) -> None:
    """Held-out EM with BM25 against steps trained, one line per setting (mean over
    seeds), min-max over seeds shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, s in result["settings"].items():
        c = s["curve"]
        ax.plot(c["steps"], c["mean"], marker="o", label=f"{name} ({len(s['seeds'])} seeds)")
        ax.fill_between(c["steps"], c["min"], c["max"], alpha=0.15)
    ax.set_xlabel("steps trained")
    ax.set_ylabel("held-out EM, searching with BM25")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
