"""Load a Config: schema defaults, then a YAML file, then ``section.key=value`` overrides.

Every failure is a ConfigError naming the full key and what it allows: an unknown key
lists the keys of its section, a wrong type names the expected type, a value out of range
or outside its choices names the range or the choices.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from conf.schema import ROLLBACK_SECTIONS, Config

CONF_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    pass


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    layers = [] if path is None else [read_yaml(path)]
    config = _merged(OmegaConf.structured(Config), layers, overrides or [])
    check_rollback_overrides(config)
    return config


def with_overrides(config: Config, overrides: list[str]) -> Config:
    """A copy of config with section.key=value overrides applied and checked."""
    return _merged(OmegaConf.structured(config), [], overrides) if overrides else config


def _merged(base, layers: list, overrides: list[str]) -> Config:
    try:
        if overrides:
            _check_override_syntax(overrides)
            layers = [*layers, OmegaConf.from_dotlist(list(overrides))]
        merged = OmegaConf.merge(base, *layers)
    except ConfigKeyError as err:
        raise ConfigError(_unknown_key_message(err)) from None
    except OmegaConfBaseException as err:
        raise ConfigError(_type_message(err)) from None
    config: Config = OmegaConf.to_object(merged)
    check_ranges(config)
    check_limits(config)
    return config


# Settings a rollback cannot change: they fix which questions a step's groups hold, or how
# the learner's checkpoint is sharded.
FIXED_ON_ROLLBACK = ("rollout.group_size", "learner.num_workers")


def check_rollback_overrides(config: Config) -> None:
    """guard.on_rollback.overrides name keys of the sections a rollback rebuilds, and the
    config with them applied loads."""
    key = "guard.on_rollback.overrides"
    for item in config.guard.on_rollback.overrides:
        name = item.split("=", 1)[0].strip()
        if name.split(".")[0] not in ROLLBACK_SECTIONS or name in FIXED_ON_ROLLBACK:
            raise ConfigError(f"bad value for config key '{key}': {item!r}; a rollback "
                              f"can change keys of {', '.join(ROLLBACK_SECTIONS)}, except "
                              f"{', '.join(FIXED_ON_ROLLBACK)}")
    try:
        with_overrides(config, config.guard.on_rollback.overrides)
    except ConfigError as err:
        raise ConfigError(f"{key}: {err}") from None


def read_yaml(path: str | Path):
    """The file's YAML mapping; a missing or unreadable file, a syntax error (with its line
    and column) or a top level that is not a mapping is a one-line ConfigError."""
    import yaml

    try:
        layer = OmegaConf.load(path)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(f"{path}: {where}: YAML syntax error: {err.problem}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the config file: "
                          f"{type(err).__name__}: {err}".splitlines()[0]) from None
    if not isinstance(layer, DictConfig):
        raise ConfigError(f"{path}: the config file must be a mapping of sections "
                          f"(rollout:, learner:, ...), not a {type(layer).__name__}")
    return layer


def _check_override_syntax(overrides: list[str]) -> None:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override {item!r} is not of the form section.key=value")


# Keys that moved to the section of the component that reads them: old -> new.
MOVED_KEYS = {"learner.reward": "rollout.reward"}


def _unknown_key_message(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None) or "?"
    if key in MOVED_KEYS:
        return f"config key '{key}' is now '{MOVED_KEYS[key]}'"
    section = _section_of(key)
    allowed = ", ".join(f.name for f in dataclasses.fields(section)) if section else "?"
    return f"unknown config key '{key}'; allowed keys here: {allowed}"


def _type_message(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None) or "?"
    detail = str(err).splitlines()[0]
    return f"bad value for config key '{key}': {detail}"


def _section_of(full_key: str):
    """The config section (a dataclass instance) that holds full_key's last part, or None."""
    node = Config()
    for part in full_key.split(".")[:-1]:
        child = getattr(node, part, None)
        if not dataclasses.is_dataclass(child):
            return node if child is None else None
        node = child
    return node


def check_ranges(node, prefix: str = "") -> None:
    """Check every field's choices/min/max metadata, recursively."""
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_ranges(value, key + ".")
            continue
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"bad value for config key '{key}': {value!r}; "
                              f"allowed: {', '.join(choices)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"bad value for config key '{key}': {value!r}; "
                              f"a finite number is needed")
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"bad value for config key '{key}': {value!r}; "
                              f"allowed range: [{low}, {high}]")


def check_limits(config: Config) -> None:
    """Limits one key sets on another: each (key, value, upper bound, what the bound is)."""
    episode, sim = config.rollout.episode, config.simulator
    limits = [
        ("learner.mini_batches", config.learner.mini_batches,
         config.trainer.groups_per_step, "trainer.groups_per_step"),
        ("simulator.autoscaling.min_replicas", sim.autoscaling.min_replicas,
         sim.autoscaling.max_replicas, "simulator.autoscaling.max_replicas"),
        ("rollout.episode.max_context_tokens", episode.max_context_tokens,
         config.rollout.engine.max_model_len, "rollout.engine.max_model_len"),
        ("rollout.episode.max_turn_tokens", episode.max_turn_tokens,
         episode.max_context_tokens - 1, "rollout.episode.max_context_tokens - 1"),
        ("simulator.max_tokens", sim.max_tokens, sim.engine.max_model_len - 1,
         "simulator.engine.max_model_len - 1"),
    ]
    for key, value, high, what in limits:
        if value > high:
            raise ConfigError(f"bad value for config key '{key}': {value!r}; allowed "
                              f"range: [.., {what}={high!r}]")


def shipped_configs() -> list[Path]:
    return sorted(CONF_DIR.glob("*.yaml"))
