"""The method's claims in miniature: RL against the simulated search engine against RL
against the real retriever, with and without the simulator's fine-tuning and the noise
curriculum, and self-search, over seeds, on the tiny world.

Each setting is ``simsearch pipeline conf/tiny.yaml`` with a few overrides (printed, so one
can be run alone), from the same cached stages; each finished run is cached too, so a rerun
only assembles. Every final policy is scored on the held-out questions with BM25 (the
pipeline's own evaluation) and with the fine-tuned simulator at noise 0 (the pipeline's
second evaluation when training searched it, else ``simsearch eval`` on the final
checkpoint). Settings:

- simulator: the fine-tuned simulator with the exponential noise curriculum (the default);
- fixed_noise: the same simulator at a fixed noise probability, the curriculum's mean;
- prompt_only: the simulator base without fine-tuning, prompted with a worked example;
- bm25: BM25 over the corpus, the real engine;
- self: self-search (SSRL): the policy writes its own information, with SSRL's reward
  (its warm start is the self-search one, so its gain is over that).

    python bench/sim_vs_real.py [--seeds 0,1,2] [--settings simulator,bm25,...]
        [--steps 100] [--out bench/results/sim_vs_real.json] [section.key=value ...]

Prints a table, writes JSON and a PNG next to it (``report_sim_vs_real``). About 7 min a
run here with the stages cached: 5 settings x 3 seeds about 2 hours.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import arguments, launch, write_json

SETTINGS = {
    "simulator": ("fine-tuned simulator, noise curriculum (default)", []),
    "fixed_noise": ("fine-tuned simulator, fixed noise at the curriculum's mean", None),
    "prompt_only": ("simulator base, prompt only (no fine-tuning)",
                    ["simulator.prompt=prompt_only"]),
    "bm25": ("BM25 over the corpus (the real engine)", ["search.backend=bm25"]),
    "self": ("self-search (SSRL reward)", ["search.backend=self", "rollout.reward=ssrl"]),
}
TINY = "conf/tiny.yaml"


def curriculum_mean(cfg) -> float:
    """The noise probability of cfg's curriculum averaged over the run's steps."""
    from actors.curriculum import NoiseSchedule

    total = cfg.trainer.total_steps
    schedule = NoiseSchedule.of(cfg.curriculum, total)
    return sum(schedule(step) for step in range(total)) / total


def setting_overrides(name: str, common: list[str]) -> list[str]:
    if name not in SETTINGS:
        raise SystemExit(f"unknown setting {name!r}; allowed: {', '.join(SETTINGS)}")
    overrides = SETTINGS[name][1]
    if overrides is None:  # fixed_noise
        from conf.loader import CONF_DIR, load_config

        mean = curriculum_mean(load_config(CONF_DIR / "tiny.yaml", common))
        overrides = ["curriculum.schedule=constant", f"curriculum.end={mean:.4f}"]
    return overrides


def simulator_eval(run_dir: Path, common: list[str], seed: int) -> dict:
    """The final checkpoint's held-out report with the fine-tuned simulator at noise 0
    (``simsearch eval``), cached in the run folder."""
    from conf.loader import CONF_DIR, load_config
    from orchestrator.evaluate import evaluate

    out = run_dir / "eval-simulator.json"
    if not out.exists():
        final = max((run_dir / "checkpoints").glob("step*")) / "model"
        cfg = load_config(CONF_DIR / "tiny.yaml", [
            *common, f"trainer.seed={seed}", f"eval.policy_path={final}",
            "eval.search.backend=simulator", f"eval.output={out}",
            f"trainer.run_dir={run_dir}"])
        evaluate(cfg)
    return json.loads(out.read_text())["report"]


def run_setting(name: str, seed: int, common: list[str]) -> dict:
    """One pipeline run of a setting: its command, metrics rows and simulator scores."""
    from conf.loader import CONF_DIR, load_config
    from orchestrator.pipeline import pipeline
    from orchestrator.report import read_metrics

    overrides = [*common, *setting_overrides(name, common), f"trainer.seed={seed}"]
    command = " ".join(["simsearch pipeline", TINY, *overrides])
    print(f"\n=== {name}, seed {seed}: {command}", flush=True)
    cfg = load_config(CONF_DIR / "tiny.yaml", overrides)
    run_dir = pipeline(cfg)
    rows = read_metrics(run_dir)
    tuned_sim = cfg.search.backend == "simulator" and cfg.simulator.prompt == "sft"
    simulator = None if tuned_sim else simulator_eval(run_dir, common, seed)
    return {"setting": name, "seed": seed, "command": command, "run_dir": str(run_dir),
            "episodes_per_step": cfg.trainer.groups_per_step * cfg.rollout.group_size,
            "simulated": cfg.search.backend == "simulator", "rows": rows,
            "simulator_eval": simulator}


def main(argv: list[str] | None = None) -> dict:
    from report_sim_vs_real import assemble, plot, print_table

    args = arguments(__doc__, 100, "bench/results/sim_vs_real.json",
                     ("--seeds", {"default": "0,1,2"}),
                     ("--settings", {"default": ",".join(SETTINGS)}), argv=argv)
    common = [f"trainer.total_steps={args.steps}", *args.overrides]
    runs = [run_setting(name, seed, common) for seed in map(int, args.seeds.split(","))
            for name in args.settings.split(",")]  # seed by seed: a cut run is balanced
    result = assemble(runs, {name: SETTINGS[name][0] for name in SETTINGS})
    print_table(result)
    out = Path(args.out)
    plot(result, out.with_suffix(".png"))
    write_json(str(out), result)
    return result


if __name__ == "__main__":
    launch(main)
