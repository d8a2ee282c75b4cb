"""What the benchmarks share: a short training run of the tiny default read back, their
arguments, their JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def train_rows(overrides: list[str]) -> tuple[object, list[dict]]:
    """(config, metrics rows after the first step) of a training run of conf/tiny.yaml with
    overrides; the first step is left out, as it waits for the engines' first requests."""
    from conf.loader import CONF_DIR, load_config
    from orchestrator.train import train

    cfg = load_config(CONF_DIR / "tiny.yaml", overrides)
    run_dir = train(cfg)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return cfg, [r for r in rows[1:] if "timing/step_s" in r]


def mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def write_json(path: str, data: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    print(f"wrote {out}")


def arguments(doc: str, steps: int, out: str, *extra: tuple[str, dict],
              argv: list[str] | None = None) -> argparse.Namespace:
    """--steps, --out, any extra (flag, add_argument keywords), then config overrides (of
    argv, default the command line)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--out", default=out)
    for flag, keywords in extra:
        parser.add_argument(flag, **keywords)
    parser.add_argument("overrides", nargs="*")
    return parser.parse_args(argv)


def launch(main) -> None:
    """main() with the settings a local run needs (no Ray token, quiet tokenizers)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
