"""Load a Config: schema defaults, then a YAML file, then ``section.key=value`` overrides.

Every failure is a ConfigError naming the full key and what it allows: an unknown key
lists the keys of its section, a wrong type names the expected type, a value out of range
or outside its choices names the range or the choices.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from conf.schema import Config

CONF_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    pass


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    schema = OmegaConf.structured(Config)
    layers = []
    try:
        if path is not None:
            layers.append(OmegaConf.load(path))
        if overrides:
            _check_override_syntax(overrides)
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        merged = OmegaConf.merge(schema, *layers)
    except ConfigKeyError as err:
        raise ConfigError(_unknown_key_message(err)) from None
    except OmegaConfBaseException as err:
        raise ConfigError(_type_message(err)) from None
    config: Config = OmegaConf.to_object(merged)
    check_ranges(config)
    if config.learner.mini_batches > config.trainer.groups_per_step:
        raise ConfigError(f"bad value for config key 'learner.mini_batches': "
                          f"{config.learner.mini_batches}; allowed range: [1, "
                          f"trainer.groups_per_step={config.trainer.groups_per_step}]")
    return config


def _check_override_syntax(overrides: list[str]) -> None:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override {item!r} is not of the form section.key=value")


def _unknown_key_message(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None) or "?"
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
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"bad value for config key '{key}': {value!r}; "
                              f"allowed range: [{low}, {high}]")
    if prefix == "simulator.autoscaling." and node.min_replicas > node.max_replicas:
        raise ConfigError("simulator.autoscaling.min_replicas must be <= max_replicas")


def shipped_configs() -> list[Path]:
    return sorted(CONF_DIR.glob("*.yaml"))
