"""The ``simsearch`` command line.

    simsearch pipeline [CONFIG.yaml] [section.key=value ...]
    simsearch world | pretrain | warm-start | sft-simulator [CONFIG.yaml] [...]
    simsearch train [CONFIG.yaml] [section.key=value ...]
    simsearch eval [CONFIG.yaml] [section.key=value ...]
    simsearch serve-simulator [CONFIG.yaml] [section.key=value ...]

A config error stops with the offending key and what it allows, before anything starts
(exit code 2): the values, the limits keys set on each other, and the files the command
will read (``orchestrator.preflight``). A run that cannot go on (a question that keeps
failing, restarts used up) stops with one line saying why (exit code 1). Ctrl-C or SIGTERM
stops a command through its clean-up; it exits with 130 or 143.
"""

from __future__ import annotations

import argparse
import signal
import sys

from actors.errors import RunStopped
from conf.loader import ConfigError, load_config
from orchestrator.preflight import preflight
from orchestrator.wiring import stopped_by_sigterm

COMMANDS = {
    "pipeline": "the whole method on the tiny world, each stage cached, then a report",
    "world": "build (or find) the tiny world: corpus, questions, tokenizer",
    "pretrain": "build (or find) the tiny base LMs that read the corpus",
    "warm-start": "build (or find) the tiny policy's warm start on format demonstrations",
    "train": "train a search agent",
    "eval": "score a policy checkpoint on a question set with any search backend",
    "serve-simulator": "serve the simulator pool as a Search-R1 POST /retrieve endpoint",
    "sft-simulator": "collect, label and fine-tune a simulator; save an HF checkpoint",
}


def _split(args: list[str]) -> tuple[str | None, list[str]]:
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return None, args


def _train(cfg) -> None:
    from orchestrator.train import train

    train(cfg)


def _eval(cfg) -> None:
    from orchestrator.evaluate import evaluate

    evaluate(cfg)


def _serve_simulator(cfg) -> None:
    from orchestrator.serve_simulator import serve_simulator

    serve_simulator(cfg)


def _sft_simulator(cfg) -> None:
    from orchestrator.sft_simulator import sft_simulator

    sft_simulator(cfg)


def _pipeline(cfg) -> None:
    from orchestrator.pipeline import pipeline

    pipeline(cfg)


def _stage(name: str):
    def run(cfg) -> None:
        from tinyworld import stages

        build = {"world": stages.world_stage, "pretrain": stages.pretrain_stage,
                 "warm-start": lambda world: stages.warm_start_stage(
                     world, self_search=cfg.search.backend == "self")}[name]
        print(build(cfg.world))

    return run


RUNNERS = {"pipeline": _pipeline, "world": _stage("world"), "pretrain": _stage("pretrain"),
           "warm-start": _stage("warm-start"), "train": _train, "eval": _eval,
           "serve-simulator": _serve_simulator, "sft-simulator": _sft_simulator}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simsearch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("args", nargs="*", metavar="[CONFIG.yaml] [section.key=value]")
    ns = parser.parse_args(argv)
    path, overrides = _split(ns.args)
    try:
        cfg = load_config(path or _default_config(), overrides)
        preflight(ns.command, cfg)
    except ConfigError as err:
        print(f"simsearch: config error: {err}", file=sys.stderr)
        return 2
    try:
        RUNNERS[ns.command](cfg)
    except ConfigError as err:  # found once a cluster is joined: resources no node offers
        print(f"simsearch: config error: {err}", file=sys.stderr)
        return 2
    except RunStopped as err:
        print(f"simsearch: run stopped: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM once Ray is up (wiring.unwind_on_sigterm)
        stop = signal.SIGTERM if stopped_by_sigterm() else signal.SIGINT
        print(f"simsearch: stopped by {stop.name}", file=sys.stderr)
        return 128 + stop
    return 0


def _default_config() -> str:
    from conf.loader import CONF_DIR

    return str(CONF_DIR / "tiny.yaml")


if __name__ == "__main__":
    sys.exit(main())
