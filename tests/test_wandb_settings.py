"""Where a run's W&B mode, project, entity and name come from: the config, with the
environment winning where set, and online only when an API key is there (environment or
`wandb login`'s netrc entry)."""

from pathlib import Path

import pytest

from conf.schema import WandbConf
from orchestrator.metrics import wandb_init_args


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return tmp_path / "netrc"


def test_config_values_without_environment(clean_env):
    args = wandb_init_args(WandbConf(project="p", entity="e", name="n"), Path("runs/x"))
    assert args == {"mode": "offline", "project": "p", "entity": "e", "name": "n"}


def test_empty_name_and_entity_fall_back(clean_env):
    args = wandb_init_args(WandbConf(), Path("runs/20261126-x"))
    assert (args["entity"], args["name"]) == (None, "20261126-x")


def test_environment_wins(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_PROJECT", "envp")
    monkeypatch.setenv("WANDB_ENTITY", "enve")
    monkeypatch.setenv("WANDB_NAME", "envn")
    args = wandb_init_args(WandbConf(project="p", entity="e", name="n"), Path("runs/x"))
    assert (args["project"], args["entity"], args["name"]) == ("envp", "enve", "envn")


@pytest.mark.parametrize("how", ["env", "netrc"])
def test_auto_goes_online_with_a_key(clean_env, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    else:
        clean_env.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40)
        clean_env.chmod(0o600)
    assert wandb_init_args(WandbConf(), Path("runs/x"))["mode"] == "online"
    assert wandb_init_args(WandbConf(mode="offline"), Path("runs/x"))["mode"] == "offline"


def test_another_hosts_netrc_entry_is_no_key(clean_env):
    clean_env.write_text("machine example.com\n  login u\n  password p\n")
    clean_env.chmod(0o600)
    assert wandb_init_args(WandbConf(), Path("runs/x"))["mode"] == "offline"
