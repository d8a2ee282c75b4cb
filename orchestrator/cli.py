"""The ``simsearch`` command line.

    simsearch train [CONFIG.yaml] [section.key=value ...]

A config error stops with the offending key and what it allows, before anything starts.
"""

from __future__ import annotations

import argparse
import sys

from conf.loader import ConfigError, load_config


def _split(args: list[str]) -> tuple[str | None, list[str]]:
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return None, args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simsearch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train_cmd = sub.add_parser("train", help="train a search agent")
    train_cmd.add_argument("args", nargs="*", metavar="[CONFIG.yaml] [section.key=value]")
    ns = parser.parse_args(argv)
    path, overrides = _split(ns.args)
    try:
        cfg = load_config(path or _default_config(), overrides)
    except (ConfigError, FileNotFoundError) as err:
        print(f"simsearch: config error: {err}", file=sys.stderr)
        return 2
    from orchestrator.train import train

    train(cfg)
    return 0


def _default_config() -> str:
    from conf.loader import CONF_DIR

    return str(CONF_DIR / "tiny.yaml")


if __name__ == "__main__":
    sys.exit(main())
