"""`simsearch serve-simulator` under load: answered queries/s, refusals and latency.

Starts serve-simulator on a free port of 127.0.0.1 (its own Ray cluster, conf/tiny.yaml
with any overrides) and drives ``POST /retrieve`` with closed-loop clients, each sending
requests of --queries queries back to back for --seconds, at each concurrency level in
turn. A refused request (503 with Retry-After: the server's serve.max_pending_queries
bound) is counted, and its client waits as Retry-After says before sending the next.
Prints, per concurrency, answered queries/s, the refusal rate, p50/p99 latency of answered
requests and the other statuses; writes JSON.

    python bench/retrieve_load.py [--concurrency 1 4 16 64] [--seconds 30] [--queries 8]
        [--out bench/results/retrieve_load.json] [section.key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from common import launch, write_json

ROOT = Path(__file__).resolve().parents[1]

QUERIES = ["where was Kalo born", "profession of Vo Dan", "country of Mitar",
           "who is Fi", "capital of Mitar", "tallest mountain"]


def start_server(overrides: list[str], log_path: str) -> tuple[subprocess.Popen, str]:
    """serve-simulator on a free port; (process, /retrieve URL) once it serves."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "serve-simulator",
                             "conf/tiny.yaml", f"serve.port={port}", *overrides],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 600
    while "serving the simulator at POST" not in Path(log_path).read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"serve-simulator did not start; see {log_path}")
        time.sleep(1.0)
    return proc, f"http://127.0.0.1:{port}/retrieve"


def send(url: str, queries: list[str]) -> tuple[int, float]:
    """(status, seconds the server asks to wait before the next request)."""
    request = urllib.request.Request(url, data=json.dumps({"queries": queries}).encode(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
            return response.status, 0.0
    except urllib.error.HTTPError as err:
        err.read()
        return err.code, float(err.headers.get("Retry-After") or 0)
    except OSError:
        return 0, 0.0  # no answer at all (connection refused or timed out)


def client(url: str, size: int, until: float, out: list) -> None:
    """Requests back to back until `until`, (status, seconds) each; a refused one waits
    as long as Retry-After says."""
    i = 0
    while time.monotonic() < until:
        queries = [QUERIES[(i + j) % len(QUERIES)] for j in range(size)]
        began = time.monotonic()
        status, wait_s = send(url, queries)
        out.append((status, time.monotonic() - began))
        time.sleep(min(wait_s, max(until - time.monotonic(), 0.0)))
        i += 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(url: str, concurrency: int, seconds: float, size: int) -> dict:
    """Closed-loop clients for `seconds`; requests still running at the end count too."""
    out: list = []
    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(url, size, began + seconds, out))
               for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    statuses = Counter(status for status, _ in out)
    answered = [s for status, s in out if status == 200]
    return {"concurrency": concurrency, "requests": len(out), "wall_s": wall,
            "answered_qps": len(answered) * size / wall,
            "refusal_rate": statuses[503] / max(len(out), 1),
            "p50_s": percentile(answered, 0.5), "p99_s": percentile(answered, 0.99),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--out", default="bench/results/retrieve_load.json")
    parser.add_argument("overrides", nargs="*")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    log = os.path.join(tempfile.mkdtemp(prefix="retrieve-load-"), "serve.log")
    proc, url = start_server(args.overrides, log)
    try:
        send(url, ["warm up"])
        rows = [measure(url, c, args.seconds, args.queries) for c in args.concurrency]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    keys = ["answered_qps", "refusal_rate", "p50_s", "p99_s"]
    print(f"\n{'clients':>8} {'requests':>9} " + " ".join(f"{k:>13}" for k in keys)
          + "  statuses")
    for r in rows:
        print(f"{r['concurrency']:8d} {r['requests']:9d} "
              + " ".join(f"{r[k]:13.3f}" for k in keys) + f"  {r['statuses']}")
    write_json(args.out, {"results": rows, "queries_per_request": args.queries,
                          "seconds": args.seconds, "overrides": args.overrides,
                          "log": log})


if __name__ == "__main__":
    launch(main)
