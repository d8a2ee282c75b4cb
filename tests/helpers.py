"""Small helpers of the integration tests: a free port, waiting for a condition."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout_s: float, what: str, every_s: float = 0.5):
    """Poll condition() until it returns a truthy value; fail naming `what` at timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def answers(url: str) -> bool:
    """Whether a GET of url gets any 2xx reply."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def vllm_openai_server(model: str, log_path, extra: tuple[str, ...] = ()):
    """vLLM's own OpenAI-compatible server (served name "tiny-sim") on a free port of
    127.0.0.1; yields its /v1 URL once it answers /health."""
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="nobind")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
             "--served-model-name", "tiny-sim", "--host", "127.0.0.1", "--port", str(port),
             "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager", *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: answers(base + "/health") or proc.poll() is not None, 300,
                       "the vLLM OpenAI server")
            assert proc.poll() is None, f"the server exited; see {log_path}"
            yield base + "/v1"
        finally:
            proc.terminate()
            proc.wait(timeout=60)


@contextmanager
def serve_simulator(log_path, overrides: tuple[str, ...] = ()):
    """`simsearch serve-simulator conf/tiny.yaml` as a user runs it (its own Ray cluster, a
    free port); yields (the /retrieve URL, the process) once it prints its address, and
    checks that Ctrl-C ends it cleanly (the app deleted, Ray shut down)."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "serve-simulator", "conf/tiny.yaml",
             f"serve.port={port}", *overrides], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: proc.poll() is not None or _serving(log_path), 300,
                       "serve-simulator to print its address")
            assert proc.poll() is None, f"serve-simulator exited; see {log_path}"
            yield f"http://127.0.0.1:{port}/retrieve", proc
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=120) == 0, f"unclean exit; see {log_path}"
        finally:
            if proc.poll() is None:
                proc.kill()


def _serving(log_path) -> bool:
    with open(log_path) as f:
        return "serving the simulator at POST http://127.0.0.1:" in f.read()
