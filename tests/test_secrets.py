"""The openai backend's API key stays secret. Unit: ``check_key_transport`` refuses to send
a key over plain http to any host but this machine. Integration: a one-step training
against vLLM's OpenAI-compatible server, started with the key as its --api-key (so every
search proves the key was sent), leaves the key's value in no file of the run folder
(metrics.jsonl, W&B's offline files, checkpoints) and prints it nowhere; the run's stderr
has no traceback."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from actors.simulator import check_key_transport
from tests.helpers import vllm_openai_server

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "SIMSEARCH_TEST_OPENAI_KEY"


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://127.0.0.1:8000/v1",
                                 "http://localhost:8000/v1", "http://[::1]:8000/v1"])
def test_a_key_may_go_encrypted_or_to_this_machine(url):
    check_key_transport(url, key_is_set=True)


@pytest.mark.parametrize("url", ["http://api.example.com/v1", "http://10.0.0.7:8000/v1"])
def test_a_key_is_refused_over_plain_http_to_another_host(url):
    with pytest.raises(ValueError, match="search.openai.api_key_env") as refused:
        check_key_transport(url, key_is_set=True)
    assert "search.openai.base_url" in str(refused.value) and "https" in str(refused.value)
    check_key_transport(url, key_is_set=False)  # no key, nothing to leak


def test_a_url_that_is_not_http_is_refused():
    with pytest.raises(ValueError, match="search.openai.base_url"):
        check_key_transport("api.example.com/v1", key_is_set=False)


@pytest.fixture(scope="module")
def secret_key() -> str:
    return f"sk-simsearch-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def keyed_openai_server(tiny_assets, tmp_path_factory, secret_key):
    """vLLM's OpenAI-compatible server with the tiny simulator, answering only requests
    that carry secret_key."""
    log = tmp_path_factory.mktemp("openai") / "server.log"
    with vllm_openai_server(str(tiny_assets.simulator), log, ("--api-key", secret_key)) as base:
        yield base


@pytest.mark.integration
def test_a_training_run_keeps_the_api_key_out_of_its_files_and_output(
        keyed_openai_server, secret_key, tmp_path):
    env = dict(os.environ, **{KEY_ENV: secret_key}, WANDB_MODE="offline")
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "train", "conf/tiny.yaml",
         "trainer.total_steps=1", "trainer.groups_per_step=2", "trainer.checkpoint_every=1",
         f"trainer.run_dir={tmp_path}", "search.backend=openai",
         f"search.openai.base_url={keyed_openai_server}", "search.openai.model=tiny-sim",
         f"search.openai.api_key_env={KEY_ENV}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    (row,) = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # the server answers only requests with the key: searches that all succeeded sent it
    assert row["search/queries"] > 0 and row["search/failed"] == 0
    assert list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 3
    leaks = [p for p in files if secret_key.encode() in p.read_bytes()]
    assert leaks == []
    assert secret_key not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, \
        run.stderr[-3000:]
