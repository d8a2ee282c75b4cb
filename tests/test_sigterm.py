"""SIGTERM (`kill`, `timeout`) stops `simsearch train` as Ctrl-C does: the actors stop, the
command says so and exits with 143, and the embedded Ray cluster the run started leaves
no process behind (the handler ray.init leaves ends the driver on the spot and leaves the
cluster's agents running). W&B's service records the run's exit either way, so its run
file cannot tell the two apart."""

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.ray_head import cluster_processes, head_env, stop_cluster
from tests.wandb_file import history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SIMSEARCH = str(Path(sys.executable).with_name("simsearch"))


def test_sigterm_stops_training_and_the_cluster_it_started(tiny_assets, tmp_path):
    ray_tmp = Path(tempfile.mkdtemp(prefix="raysig-", dir="/tmp"))  # short socket paths
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        driver = subprocess.Popen(
            [SIMSEARCH, "train", "conf/tiny.yaml", f"trainer.run_dir={tmp_path / 'runs'}",
             "trainer.total_steps=1000", "trainer.checkpoint_every=0", "eval.every=0"],
            cwd=ROOT, env=head_env({"RAY_TMPDIR": str(ray_tmp)}), stdout=out,
            stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "step 2/1000:" in log.read_text() or driver.poll() is not None,
                   600, "the second step")
        assert driver.poll() is None, log.read_text()[-4000:]
        assert cluster_processes(ray_tmp, 0)
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=180) == 128 + signal.SIGTERM, log.read_text()[-4000:]
        assert "simsearch: stopped by SIGTERM" in log.read_text()
        wait_until(lambda: not cluster_processes(ray_tmp, 0), 30, "the cluster to end")
        (run_file,) = (tmp_path / "runs").glob("*/wandb/offline-run-*/run-*.wandb")
        assert len(history(run_file)) >= 2
    finally:
        if driver.poll() is None:
            driver.kill()
        stop_cluster(ray_tmp, 0)
        shutil.rmtree(ray_tmp, ignore_errors=True)
