"""The README's cluster runbook on one machine: `ray start --head` on 127.0.0.1, then
`ray job submit` of the tiny training with cluster/runtime_env.yaml (the repository as
working dir). The job succeeds, its logs show every step, and teardown leaves none of the
cluster's processes and no address file behind."""

import subprocess
from pathlib import Path

import pytest
from ray._common.utils import get_ray_address_file

from tests.ray_head import RAY, cluster_processes, ray_head

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_ray_job_submit_runs_the_tiny_training(tmp_path, tiny_assets):
    steps = 2
    with ray_head(resources={"simulator": 1}, dashboard=True) as head:
        submit = subprocess.run(
            [RAY, "job", "submit", "--address", head.dashboard_url,
             "--runtime-env", "cluster/runtime_env.yaml", "--",
             "simsearch", "train", "conf/tiny.yaml", f"trainer.total_steps={steps}",
             f"trainer.run_dir={tmp_path / 'runs'}", "trainer.checkpoint_every=0"],
            cwd=ROOT, env=head.env, capture_output=True, text=True, timeout=900)
        logs = submit.stdout + submit.stderr
        assert submit.returncode == 0, logs[-4000:]
        assert "succeeded" in logs
        for step in range(1, steps + 1):
            assert f"step {step}/{steps}:" in logs
        assert f"done: {steps} steps" in logs
        # a clean exit: no engine left for interpreter teardown (vLLM's AsyncLLM.__del__)
        assert "Exception ignored" not in logs, logs[-4000:]
        port = int(head.gcs_address.rsplit(":", 1)[1])
        assert cluster_processes(head.temp_dir, port)
    assert cluster_processes(head.temp_dir, port) == []
    assert not head.temp_dir.exists()
    default = Path(get_ray_address_file(None))
    assert not (default.exists() and f":{port}" in default.read_text())
