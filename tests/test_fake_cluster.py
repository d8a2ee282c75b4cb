"""A local multi-node cluster through Ray's fake_multinode provider
(cluster/local/fake-cluster.yaml): under search load the simulator pool's nodes scale up
and later down, while the learner and rollout worker stay on their own nodes. The driver
runs as its own process (tests/fake_cluster_driver.py), since this test session holds
another Ray cluster."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import free_port
from tests.ray_head import cluster_processes, ray_head

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def fake_cluster_config(path: Path, gcs_address: str) -> Path:
    config = yaml.safe_load((ROOT / "cluster" / "local" / "fake-cluster.yaml").read_text())
    config["provider"]["gcs_address"] = gcs_address
    path.write_text(yaml.safe_dump(config))
    return path


def test_simulator_nodes_follow_search_load_while_learner_and_policy_stay(tmp_path,
                                                                          tiny_assets):
    port = free_port()
    config = fake_cluster_config(tmp_path / "fake.yaml", f"127.0.0.1:{port}")
    fake = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    with ray_head(port=port, autoscaling_config=config, env=fake) as head:
        driver = subprocess.run(
            [sys.executable, "-m", "tests.fake_cluster_driver", head.gcs_address,
             str(tmp_path / "run")], cwd=ROOT, env=head.env, capture_output=True,
            text=True, timeout=900)
        out = driver.stdout + driver.stderr
        assert driver.returncode == 0, out[-4000:]
        (line,) = [l for l in driver.stdout.splitlines() if l.startswith("REPORT ")]
        report = json.loads(line.removeprefix("REPORT "))
        print(report)  # the scaling times, for the log
    assert report["placed_on_own_node"] == {"learner": True, "policy": True}
    assert report["simulator_nodes_at_start"] == 1
    assert report["simulator_nodes_under_load"] == 2 and report["load_rounds"] >= 1
    assert report["failed_searches"] == 0, report["search_errors"]
    assert report["scaled_down"] and report["simulator_nodes_when_idle"] == 1
    assert report["stayed"] == {"learner": True, "policy": True}
    assert report["role_nodes_alive"] == {"learner": True, "policy": True}
    assert cluster_processes(head.temp_dir, port) == []
