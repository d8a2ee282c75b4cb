"""The bad-input catalogue: each input a user can get wrong, the one-line error the command
prints and its exit code, before anything starts (no Ray, no run folder)."""

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from orchestrator.cli import main

BLANK_ANSWER = {"question": ["where was Ana born?", "who wrote X?"],
                "golden_answers": [["Lima"], [""]]}
PROMPT_NOT_TEXT = {"prompt": [[{"role": "user", "content": 7}]],
                   "golden_answers": [["Lima"]]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad files of every kind the configs name."""
    root = tmp_path_factory.mktemp("bad")
    (root / "syntax.yaml").write_text("learner:\n  lr: [1e-5\ntrainer:\n  seed: 0\n")
    (root / "list.yaml").write_text("- learner\n- trainer\n")
    pd.DataFrame(BLANK_ANSWER).to_parquet(root / "blank.parquet")
    pd.DataFrame(PROMPT_NOT_TEXT).to_parquet(root / "prompt.parquet")
    (root / "not.parquet").write_text("question,answer\n")
    (root / "model").mkdir()
    (root / "corpus.jsonl").write_text(json.dumps({"id": "0", "contents": '"A"\nA is.'})
                                       + "\n" + json.dumps({"id": "1", "contents": ""}) + "\n")
    return root


# (arguments, with {root} for the files above; a regex of the one-line error; exit code)
CATALOGUE = [
    (["train", "learner.lr=nan"], r"'learner\.lr': nan; a finite number", 2),
    (["train", "search.timeout_s=inf"], r"'search\.timeout_s': inf; a finite number", 2),
    (["train", "{root}/syntax.yaml"], r"syntax\.yaml: line 3, column 8: YAML syntax error", 2),
    (["train", "{root}/list.yaml"], r"list\.yaml: the config file must be a mapping", 2),
    (["train", "{root}/none.yaml"], r"none\.yaml: cannot read the config file", 2),
    (["train", "learner.nope=1"], r"unknown config key 'learner\.nope'", 2),
    (["train", "learner.algorithm=ppo"], r"'learner\.algorithm': 'ppo'; allowed: grpo", 2),
    (["train", "rollout.episode.max_context_tokens=4096"],
     r"max_context_tokens': 4096; .*rollout\.engine\.max_model_len=2048", 2),
    (["train", "rollout.episode.max_turn_tokens=1024"],
     r"max_turn_tokens': 1024; .*max_context_tokens - 1=639", 2),
    (["train", "learner.mini_batches=64"], r"trainer\.groups_per_step", 2),
    (["train", "data.train_path=/nonexistent.parquet"],
     r"'data\.train_path': no such file: '/nonexistent\.parquet'", 2),
    (["train", "data.train_path={root}/not.parquet"], r"not\.parquet: cannot read parquet", 2),
    (["train", "data.train_path={root}/blank.parquet"], r"blank\.parquet: row 1: .*blank", 2),
    (["train", "data.train_path={root}/prompt.parquet"],
     r"prompt\.parquet: row 0: .*not text", 2),
    (["train", "rollout.engine.model_path={root}/model"], r"has no config\.json", 2),
    (["train", "simulator.engine.model_path=/nowhere"], r"'/nowhere' is not a folder", 2),
    (["train", "search.backend=openai"], r"'search\.openai\.base_url': empty", 2),
    (["train", "search.backend=openai", "search.openai.base_url=http://127.0.0.1:1/v1"],
     r"'search\.openai\.model': empty", 2),
    (["train", "search.backend=openai", "search.openai.base_url=http://10.9.8.7/v1",
      "search.openai.model=m", "search.openai.api_key_env=SIMSEARCH_TEST_KEY"],
     r"plain http", 2),
    (["train", "search.backend=http", "search.http.url=ftp://host/retrieve"],
     r"'search\.http\.url': 'ftp://host/retrieve' is not an http\(s\) URL", 2),
    (["train", "search.backend=bm25", "search.bm25.corpus_path={root}/corpus.jsonl"],
     r"corpus\.jsonl: line 2: empty document", 2),
    (["train", "eval.every=5", "eval.data_path=/no.parquet"], r"'eval\.data_path'", 2),
    (["train", "eval.every=5", "eval.search.backend=openai"],
     r"'eval\.search\.openai\.base_url': empty", 2),
    (["train", "trainer.resume_from=/no/run"], r"'trainer\.resume_from'", 2),
    (["eval", "eval.policy_path={root}/model"], r"'eval\.policy_path'.*config\.json", 2),
    (["serve-simulator", "simulator.engine.model_path=/nowhere"],
     r"'simulator\.engine\.model_path'", 2),
    (["sft-simulator", "sft.search.backend=http", "sft.search.http.url=nope"],
     r"'sft\.search\.http\.url'", 2),
]


@pytest.mark.parametrize("args, error, code", CATALOGUE,
                         ids=[" ".join(a).replace("{root}/", "") for a, _, _ in CATALOGUE])
def test_bad_input_is_one_line_before_anything_starts(args, error, code, files, capsys,
                                                      monkeypatch, tmp_path):
    import ray

    monkeypatch.setenv("SIMSEARCH_TEST_KEY", "sk-test")
    argv = [a.replace("{root}", str(files)) for a in args] + [f"trainer.run_dir={tmp_path}"]
    if "=" in argv[1]:  # no config file named: the default one
        argv.insert(1, "conf/tiny.yaml")
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("simsearch: config error: "), err
    assert re.search(error, err), err
    assert not ray.is_initialized() and not any(tmp_path.iterdir())  # nothing started


def test_the_command_line_prints_no_traceback(files):
    """As a user sees it: one line on stderr, exit code 2."""
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "train",
                           str(files / "syntax.yaml")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"simsearch: config error: {files / 'syntax.yaml'}: line 3, column 8: YAML syntax "
        f"error: did not find expected ',' or ']'"]


def test_missing_resources_names_each_key_and_amount():
    from orchestrator.preflight import missing_resources

    nodes = [{"CPU": 8.0, "simulator": 2.0}, {"CPU": 4.0, "GPU": 1.0}]
    wanted = [("rollout.resource", "policy", 1.0), ("learner.num_gpus", "GPU", 2.0),
              ("simulator.resource", "simulator", 1.0), ("rollout.num_cpus", "CPU", 6.0),
              ("learner.num_cpus", "CPU", 16.0)]
    assert missing_resources(wanted, nodes) == [
        "rollout.resource (policy x1)", "learner.num_gpus (GPU x2)", "learner.num_cpus (CPU x16)"]


@pytest.mark.integration
def test_a_resource_no_node_offers_stops_a_joined_run_with_the_nodes_offers(tmp_path):
    """`ray start --head` has no autoscaler: an actor whose resource no node offers would
    wait forever, so the run stops at once, naming it and what the nodes offer; before it
    builds any tiny stage (the HOME of the run has no stage cache)."""
    from tests.ray_head import ray_head

    with ray_head(resources={"simulator": 1}) as head:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "train", "conf/tiny.yaml",
             f"trainer.ray_address={head.gcs_address}", "rollout.resource=policy",
             "learner.num_gpus=1", f"trainer.run_dir={tmp_path / 'runs'}"],
            env={**head.env, "HOME": str(tmp_path)}, capture_output=True, text=True,
            timeout=600)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert last.startswith("simsearch: config error: no node of the cluster offers"), last
    assert "rollout.resource (policy x1), learner.num_gpus (GPU x1)" in last
    assert "simulator=1" in last and "CPU=2" in last
    assert not (tmp_path / "runs").exists()  # no run folder, no actor
    assert not (tmp_path / ".cache").exists()  # no stage built
