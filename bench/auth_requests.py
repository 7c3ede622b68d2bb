"""MLflow basic auth: the tracking server's CPU per authenticated request, with the project's
credential cache (scripts/local_cluster.py, AUTH_CACHE_SECONDS) and without it, side by side.

    python -m bench.auth_requests [--requests 30]

Each side starts its own `mlflow server --app-name basic-auth` (as `make cluster-up` does with
MLFLOW_AUTH), sends the same read requests as the admin, and reads the server's CPU time
(its process tree, through psutil) before and after.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from scripts import local_cluster

PASSWORD = "bench-Pw-0123456789"


def _server_cpu(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.cpu_times().user + p.cpu_times().system
               for p in (proc, *proc.children(recursive=True)))


def measure(cache_seconds: int, requests: int) -> dict:
    state = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    cluster = local_cluster.Cluster(str(state))
    try:
        local_cluster.start_mlflow(cluster, f"sqlite:///{state / 'mlflow.db'}", PASSWORD,
                                   auth_cache_seconds=cache_seconds)
        url = f"{cluster.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        cpu, started = _server_cpu(cluster.pids["mlflow"]), time.perf_counter()
        for _ in range(requests):
            request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        return {"cache_seconds": cache_seconds, "requests": requests,
                "server_cpu_ms_per_request":
                    (_server_cpu(cluster.pids["mlflow"]) - cpu) / requests * 1000,
                "wall_ms_per_request": (time.perf_counter() - started) / requests * 1000}
    finally:
        local_cluster.down(state, say=lambda _: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    rows = [measure(seconds, args.requests) for seconds in (0, local_cluster.AUTH_CACHE_SECONDS)]
    for r in rows:
        print(f"auth cache {r['cache_seconds']:>3} s: server CPU "
              f"{r['server_cpu_ms_per_request']:.0f} ms/request, wall "
              f"{r['wall_ms_per_request']:.0f} ms/request ({r['requests']} requests)")
    print(f"ratio (no cache / cache), server CPU: "
          f"{rows[0]['server_cpu_ms_per_request'] / rows[1]['server_cpu_ms_per_request']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
