"""``simsearch serve-simulator``: the simulator pool as a long-lived Search-R1 retriever.

Deploys one Serve application: the ``RetrieveAPI`` ingress at ``POST /retrieve`` (bound
to ``serve.host``, 127.0.0.1 by default) in front of the autoscaled simulator pool, then
waits for Ctrl-C or SIGTERM and takes the application down. The ingress runs as one
replica, so its bound on queries in flight (serve.max_pending_queries) is the server's.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request

from conf.schema import Config

API_APP = "simulator-api"


def deploy_retrieve_api(cfg: Config, model_path: str, ready_timeout_s: float = 60.0) -> str:
    """Deploy the API and its pool on the connected cluster; returns the /retrieve URL."""
    from ray import serve

    from actors.retrieve_api import RetrieveAPI
    from orchestrator.wiring import run_app, simulator_app

    serve.start(http_options={"host": cfg.serve.host, "port": cfg.serve.port})
    api = serve.deployment(RetrieveAPI, name="RetrieveAPI", num_replicas=1,
                           max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
    pool = simulator_app(cfg.simulator, model_path, cfg.trainer.seed)
    run_app(api.bind(pool, cfg.serve, cfg.search), API_APP, "/",
            cfg.simulator.start_timeout_s)
    url = f"http://{cfg.serve.host}:{cfg.serve.port}/retrieve"
    _wait_until_listening(url, ready_timeout_s)
    return url


def context_warning(cfg: Config) -> str:
    """A warning when a query of serve.max_query_chars characters may make a prompt longer
    than the simulator's context (the engine would refuse it, a 503), else "". UTF-8
    bytes bound a byte-level BPE's token count from above."""
    from actors.retrieve_api import MAX_TOPK
    from actors.simulator_prompt import request_prompt

    prompt = request_prompt(cfg.simulator, "", "", [], False, MAX_TOPK)
    worst = len(prompt.encode()) + 4 * cfg.serve.max_query_chars + cfg.simulator.max_tokens
    if worst <= cfg.simulator.engine.max_model_len:
        return ""
    return (f"warning: a query of serve.max_query_chars={cfg.serve.max_query_chars} "
            f"characters may make a prompt of up to {worst} tokens with the output, over "
            f"simulator.engine.max_model_len={cfg.simulator.engine.max_model_len}; such "
            f"requests would get a 503")


def _wait_until_listening(url: str, timeout_s: float) -> None:
    """A GET must come back 405 (the API is there); anything else after timeout_s fails."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
        except urllib.error.HTTPError as err:
            if err.code == 405:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{url} is not answering; if Ray Serve already runs on this cluster with "
                f"other HTTP options (or none), shut it down first (serve shutdown)")
        time.sleep(0.5)


def serve_simulator(cfg: Config) -> None:
    from orchestrator import wiring
    from tinyworld.assets import resolve_assets

    assets = resolve_assets(cfg)
    warning = context_warning(cfg)
    if warning:
        print(warning, flush=True)
    stop = threading.Event()
    with wiring.ray_connection(cfg, ("simulator",)):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            url = deploy_retrieve_api(cfg, assets.simulator_path)
            print(f"serving the simulator at POST {url} (Ctrl-C stops)", flush=True)
            while not stop.wait(1.0):
                pass
        finally:
            wiring.stop_app(API_APP)
