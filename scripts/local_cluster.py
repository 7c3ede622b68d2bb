"""The docker-compose topology without Docker: a Spark standalone master and two workers from
the installed PySpark, and an MLflow tracking server on a throw-away PostgreSQL, all on 127.0.0.1.

    python scripts/local_cluster.py up   [--state .local-cluster] [--worker-cores 1] [--auth]
    python scripts/local_cluster.py down [--state .local-cluster]

``up`` prints the master URL and MLFLOW_TRACKING_URI to use and records every process id, with
its start time, in ``<state>/cluster.json``; ``down`` stops exactly those processes (a process
id reused by another process since, after a crash or a reboot, has another start time and is
left alone) and removes the folder.
``--auth`` starts MLflow's basic-auth app; the admin password comes from the environment
variable MLFLOW_ADMIN_PASSWORD, never from the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyspark

from pipeline.credentials import check_secret, database_uri
from pipeline.errors import PipelineError

SPARK_HOME = Path(pyspark.__file__).parent
BIN = Path(sys.executable).parent
ADMIN_PASSWORD_ENV = "MLFLOW_ADMIN_PASSWORD"
PG_PASSWORD_ENV = "LOCAL_CLUSTER_PG_PASSWORD"  # optional: a random one otherwise


@dataclass
class Cluster:
    state_dir: str
    master_url: str = ""
    master_ui: str = ""
    tracking_uri: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    # Each process's start time (clock ticks after boot, /proc/<pid>/stat): with the id, it
    # tells our process from a later one given the same id.
    starts: dict[str, int] = field(default_factory=dict)
    pg_data: str = ""

    @property
    def state_file(self) -> Path:
        return Path(self.state_dir) / "cluster.json"

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.state_file)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(cluster: Cluster, name: str, cmd: list[str], env: dict | None = None) -> None:
    """Start ``cmd`` in its own process group; ``env`` overlays ours (None removes a key)."""
    log = open(Path(cluster.state_dir) / f"{name}.log", "w")  # noqa: SIM115 - outlives us
    full = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={k: v for k, v in full.items() if v is not None})
    cluster.pids[name] = proc.pid
    start = start_ticks(proc.pid)
    if start is not None:
        cluster.starts[name] = start
    cluster.save()  # record before waiting, so `down` can stop it even if start-up fails


def _wait(what: str, check: Callable[[], bool], timeout: float, cluster: Cluster,
          name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(cluster.pids[name]):
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.5)
    log = Path(cluster.state_dir) / f"{name}.log"
    tail = log.read_text()[-1500:] if log.is_file() else ""
    raise RuntimeError(f"{what} did not start (within {timeout:.0f}s)\n{tail}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def start_spark(cluster: Cluster, workers: int, worker_cores: int, worker_memory: str,
                worker_env: dict[str, str | None] | None = None) -> None:
    port, ui = free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    env = {"SPARK_HOME": str(SPARK_HOME), "PYSPARK_PYTHON": sys.executable}
    _spawn(cluster, "spark-master", [spark_class, "org.apache.spark.deploy.master.Master",
                                     "--host", "127.0.0.1", "--port", str(port),
                                     "--webui-port", str(ui)], env)
    cluster.master_url, cluster.master_ui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}"
    _wait("Spark master", lambda: _port_open(port), 60, cluster, "spark-master")
    for i in range(1, workers + 1):
        work = Path(cluster.state_dir) / f"worker-{i}"
        work.mkdir(exist_ok=True)
        _spawn(cluster, f"spark-worker-{i}", [
            spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
            "--cores", str(worker_cores), "--memory", worker_memory, "--work-dir", str(work),
            "--webui-port", str(free_port()), cluster.master_url], {**env, **(worker_env or {})})

    def registered() -> bool:
        with urllib.request.urlopen(f"{cluster.master_ui}/json/", timeout=2) as r:
            return len([w for w in json.load(r)["workers"] if w["state"] == "ALIVE"]) >= workers
    _wait(f"{workers} Spark workers", registered, 90, cluster, "spark-worker-1")
    cluster.save()


def start_postgres(cluster: Cluster) -> str:
    """A throw-away PostgreSQL owned by this cluster; returns its SQLAlchemy URI."""
    data = Path(cluster.state_dir) / "pgdata"
    port = free_port()
    user = "mlflow"
    chosen = os.environ.get(PG_PASSWORD_ENV)
    password = check_secret(PG_PASSWORD_ENV, chosen) if chosen else os.urandom(12).hex()
    pwfile = Path(cluster.state_dir) / "pgpass"
    pwfile.write_text(password)
    pwfile.chmod(0o600)
    owner = _pg_owner()
    _run_as(owner, ["initdb", "-D", str(data), "-U", user, "--auth=scram-sha-256",
                    f"--pwfile={pwfile}"], cluster)
    cluster.pg_data = str(data)
    cluster.save()
    _run_as(owner, ["pg_ctl", "-D", str(data), "-l", str(Path(cluster.state_dir) / "pg.log"),
                    "-o", f"-h 127.0.0.1 -p {port} -k {cluster.state_dir}", "-w", "start"],
            cluster)
    # initdb's own "postgres" database is ours alone: the server lives only for this cluster.
    return database_uri("postgresql+psycopg2", user, password, "127.0.0.1", port, "postgres")


def _pg_owner() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as a system account."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "actloss-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "actloss-pg"], check=True)
    return "actloss-pg"


def _run_as(owner: str | None, cmd: list[str], cluster: Cluster) -> None:
    if owner:
        shutil.chown(cluster.state_dir, user=owner)
        for path in Path(cluster.state_dir).iterdir():
            shutil.chown(path, user=owner)
        cmd = ["runuser", "-u", owner, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


# How long the server trusts a checked (user, password): without it every request pays a
# password-hash check, which made an authenticated sweep CPU-bound on the server
# (BENCHMARKS.md, "MLflow basic auth"). A changed or deleted user is seen at once by the worker
# that changed it, by other workers within this many seconds.
AUTH_CACHE_SECONDS = 60


def write_auth_config(state_dir: Path, admin_password: str,
                      cache_seconds: int = AUTH_CACHE_SECONDS) -> Path:
    """basic_auth.ini for MLflow's basic-auth app, readable by its owner only (0600).

    The admin user is created from it on the first start; its users live in an SQLite file
    in the state folder, so ``down`` removes them with everything else.
    """
    if "\n" in admin_password or "\r" in admin_password:
        raise ValueError(f"${ADMIN_PASSWORD_ENV} must be a single line")
    path = state_dir / "basic_auth.ini"
    escaped = admin_password.replace("%", "%%")  # MLflow reads it with configparser
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never world-readable
    os.fchmod(fd, 0o600)  # also if the file was already there with a wider mode
    with os.fdopen(fd, "w") as f:
        f.write("[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{(state_dir / 'basic_auth.db').resolve()}\n"
                f"admin_username = admin\nadmin_password = {escaped}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                f"auth_cache_ttl_seconds = {cache_seconds}\n")
    return path


def _auth_env(state_dir: Path, admin_password: str, cache_seconds: int) -> dict[str, str]:
    """What `mlflow server --app-name basic-auth` needs, passed in its environment."""
    return {"MLFLOW_AUTH_CONFIG_PATH": str(write_auth_config(state_dir, admin_password,
                                                             cache_seconds)),
            # Signs the login forms' CSRF tokens; one per cluster, never reused.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(24).hex()}


def start_mlflow(cluster: Cluster, backend_uri: str, admin_password: str | None = None,
                 auth_cache_seconds: int = AUTH_CACHE_SECONDS) -> None:
    """The tracking server; with ``admin_password``, behind MLflow's basic-auth app."""
    port = free_port()
    artifacts = Path(cluster.state_dir) / "mlartifacts"
    artifacts.mkdir(exist_ok=True)
    cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--artifacts-destination", str(artifacts), "--serve-artifacts"]
    # The backend URI carries the password: pass it through the environment, not argv.
    env = {"MLFLOW_BACKEND_STORE_URI": backend_uri}
    if admin_password:
        cmd += ["--app-name", "basic-auth"]
        env.update(_auth_env(Path(cluster.state_dir), admin_password, auth_cache_seconds))
    _spawn(cluster, "mlflow", cmd, env)
    cluster.tracking_uri = f"http://127.0.0.1:{port}"
    _wait("MLflow server", lambda: _http_ok(f"{cluster.tracking_uri}/health"), 120, cluster,
          "mlflow")
    cluster.save()


def up(state_dir: Path, workers: int = 2, worker_cores: int = 1,
       worker_memory: str = "3g", admin_password: str | None = None,
       worker_env: dict[str, str | None] | None = None) -> Cluster:
    """Start the cluster. ``worker_env`` overlays the workers' (so their executors')
    environment; a None value removes the variable (e.g. PYTHONPATH)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if any(state_dir.iterdir()):
        raise RuntimeError(f"{state_dir} is not empty: is a cluster already running there?")
    cluster = Cluster(str(state_dir.resolve()))
    try:
        start_spark(cluster, workers, worker_cores, worker_memory, worker_env)
        start_mlflow(cluster, start_postgres(cluster), admin_password)
    except BaseException:
        down(state_dir)
        raise
    return cluster


def down(state_dir: Path, say: Callable[[str], None] = print) -> None:
    """Stop every process the state file names (by process group), then PostgreSQL.

    A process group is signalled only while its leader is the very process ``up`` started
    (same id, same start time), or after it exited (the id then cannot have been given to
    another process while the group lives): never a process that merely got a recorded id.
    """
    state_file = state_dir / "cluster.json"
    if not state_file.is_file():
        return
    cluster = Cluster(**json.loads(state_file.read_text()))
    ours = {}
    for name, pid in cluster.pids.items():
        why = _not_ours(pid, cluster.starts.get(name))
        if why:
            say(f"local_cluster: not stopping {name} (process {pid}): {why}")
        else:
            ours[name] = pid
    _signal_groups(cluster, ours, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for pid in ours.values():
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
    _signal_groups(cluster, ours, signal.SIGKILL)
    if cluster.pg_data and Path(cluster.pg_data).is_dir():
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as(_pg_owner(), ["pg_ctl", "-D", cluster.pg_data, "-m", "fast", "-w", "stop"],
                    cluster)
    shutil.rmtree(state_dir, ignore_errors=True)


def _signal_groups(cluster: Cluster, ours: dict[str, int], sig: int) -> None:
    for name, pid in ours.items():
        if _not_ours(pid, cluster.starts.get(name)):
            continue  # exited and replaced meanwhile
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces; the start
    # time is field 22 of the line, the 20th after the name.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _not_ours(pid: int, recorded: int | None) -> str:
    """Why process ``pid`` is not the one recorded ('' if it is, or if it has exited)."""
    now = start_ticks(pid)
    if now is None or not _alive(pid):
        return ""  # exited: signalling its group reaches only what is left of ours
    if recorded is None:
        return ("its start time was not recorded, so it cannot be told from a process that "
                "reused the id; stop it yourself if it is ours")
    if now != recorded:
        return "that id now belongs to another process (started after ours)"
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap our own children so they do not linger as zombies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--state", type=Path, default=Path(".local-cluster"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-cores", type=int, default=1)
    p.add_argument("--worker-memory", default="3g")
    p.add_argument("--auth", action="store_true",
                   help=f"MLflow with basic auth; admin password from ${ADMIN_PASSWORD_ENV}")
    args = p.parse_args(argv)
    if args.action == "down":
        down(args.state)
        print(f"local cluster in {args.state} stopped")
        return 0
    if args.state.exists() and any(args.state.iterdir()):
        print(f"local_cluster: error: {args.state} exists; run 'down' first", file=sys.stderr)
        return 2
    admin_password = os.environ.get(ADMIN_PASSWORD_ENV) if args.auth else None
    if args.auth and not admin_password:
        print(f"local_cluster: error: --auth needs the admin password in ${ADMIN_PASSWORD_ENV}",
              file=sys.stderr)
        return 2
    try:  # before anything starts: a placeholder secret is refused in one line
        if admin_password:
            check_secret(ADMIN_PASSWORD_ENV, admin_password)
        if os.environ.get(PG_PASSWORD_ENV):
            check_secret(PG_PASSWORD_ENV, os.environ[PG_PASSWORD_ENV])
    except PipelineError as exc:
        print(f"local_cluster: error: {exc}", file=sys.stderr)
        return 2
    cluster = up(args.state, args.workers, args.worker_cores, args.worker_memory,
                 admin_password)
    print(f"Spark master:  {cluster.master_url}  (UI {cluster.master_ui})")
    print(f"MLflow server: {cluster.tracking_uri}" + ("  (basic auth)" if args.auth else ""))
    print(f"export MLFLOW_TRACKING_URI={cluster.tracking_uri}")
    if args.auth:
        print("export MLFLOW_TRACKING_USERNAME=admin  # and MLFLOW_TRACKING_PASSWORD")
    print(f"spark-submit --master {cluster.master_url} jobs/train_sweep.py ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
