"""A Ray cluster a test starts with `ray start --head` on 127.0.0.1, in its own temp dir
on free ports, and stops by the PIDs of its own processes: never `ray stop`, which ends
every Ray cluster on the machine. Teardown also removes the address file it wrote and
its temp dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class Head:
    gcs_address: str
    dashboard_url: str  # empty without the dashboard (no job API then)
    temp_dir: Path
    env: dict  # the environment the cluster was started with; use it for `ray` commands


def head_env(extra: dict | None = None) -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               AUTOSCALER_METRIC_PORT=str(free_port()),
               DASHBOARD_METRIC_PORT=str(free_port()),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("RAY_ADDRESS", None)
    return {**env, **(extra or {})}


@contextmanager
def ray_head(*, resources: dict | None = None, dashboard: bool = False,
             autoscaling_config: Path | None = None, num_cpus: int = 2,
             env: dict | None = None, port: int = 0):
    # its own short temp dir: Ray's socket paths under it must stay within 107 bytes
    temp_dir = Path(tempfile.mkdtemp(prefix="rayhead-", dir="/tmp"))
    port = port or free_port()
    args = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
            f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}", "--disable-usage-stats",
            "--object-store-memory=100000000", "--dashboard-agent-listen-port=0",
            f"--ray-client-server-port={free_port()}",
            f"--resources={json.dumps(resources or {})}"]
    dashboard_url = ""
    if dashboard:
        dash_port = free_port()
        args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1",
                 f"--dashboard-port={dash_port}"]
        dashboard_url = f"http://127.0.0.1:{dash_port}"
    else:
        args.append("--include-dashboard=false")
    if autoscaling_config:
        args.append(f"--autoscaling-config={autoscaling_config}")
    env = head_env(env)
    try:
        started = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield Head(f"127.0.0.1:{port}", dashboard_url, temp_dir, env)
    finally:
        stop_cluster(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)


def cluster_processes(temp_dir: Path, port: int) -> list:
    """Processes of the cluster in temp_dir: those naming it (GCS, raylets, monitor,
    dashboard, log monitors) or its GCS address (client server), their descendants
    (agents, workers, actors), and orphans holding files under it."""
    import psutil

    marks = (str(temp_dir), f"127.0.0.1:{port}")
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = {}
    for proc in psutil.process_iter():
        try:
            if proc.pid in mine:
                continue
            line = " ".join(proc.cmdline())
            hit = any(m in line for m in marks) or any(
                f.path.startswith(str(temp_dir)) for f in proc.open_files())
            if hit:
                found[proc.pid] = proc
                found.update({c.pid: c for c in proc.children(recursive=True)})
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for pid, p in found.items() if pid not in mine]


def stop_cluster(temp_dir: Path, port: int) -> None:
    import psutil

    from ray._common.utils import get_ray_address_file

    procs = cluster_processes(temp_dir, port)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    for temp in (str(temp_dir), None):  # ray start writes it under its temp dir or the default
        address_file = Path(get_ray_address_file(temp))
        if address_file.exists() and f":{port}" in address_file.read_text():
            address_file.unlink()
