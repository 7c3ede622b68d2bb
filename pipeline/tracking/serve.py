"""The compose stack's MLflow server, started with a backend URI built here, not by Compose.

Compose can only paste ``${POSTGRES_PASSWORD}`` into a URI as it is: a password with ``@``,
``/`` or ``:`` would break it. This builds ``MLFLOW_BACKEND_STORE_URI`` from ``POSTGRES_USER``,
``POSTGRES_PASSWORD``, ``POSTGRES_HOST`` and ``POSTGRES_DB`` with each part URL-encoded,
refuses the placeholders of ``.env.example`` and a publication beyond loopback without basic
auth (one line, exit 2: the server does not start),
and then becomes ``mlflow server`` with the remaining arguments. The URI goes through the
environment, never the command line, so ``ps`` does not show the password.

    python -m pipeline.tracking.serve --host 0.0.0.0 --port 5000 ...   (mlflow server options)

Standard library and pipeline.credentials only: MLflow is imported by the server it starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

from pipeline.credentials import check_secret, database_uri, is_loopback
from pipeline.errors import PipelineError

AUTH_SECRETS = ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")


def server_env(environ: Mapping[str, str], args: Sequence[str]) -> dict[str, str]:
    """The server's environment: ``environ`` plus the encoded backend URI."""
    password = check_secret("POSTGRES_PASSWORD", environ.get("POSTGRES_PASSWORD"))
    user = check_secret("POSTGRES_USER", environ.get("POSTGRES_USER"))
    if "basic-auth" in args:  # MLflow's auth app: its admin password and form key as well
        for name in AUTH_SECRETS:
            check_secret(name, environ.get(name))
    bind = environ.get("PUBLISHED_ON") or "127.0.0.1"  # Compose's BIND_ADDRESS
    if not is_loopback(bind) and "basic-auth" not in args:
        raise PipelineError(f"BIND_ADDRESS={bind}: the server would be published beyond this "
                            "host without authentication; set MLFLOW_AUTH=1 or keep "
                            "BIND_ADDRESS=127.0.0.1")
    uri = database_uri("postgresql+psycopg2", user, password,
                       environ.get("POSTGRES_HOST", "postgres"),
                       environ.get("POSTGRES_PORT", "5432"),
                       environ.get("POSTGRES_DB") or "mlflow")
    # MLflow 3's server also starts job consumers (GenAI evaluation jobs) the pipeline never
    # submits; off unless the environment asks for them.
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **environ,
            "MLFLOW_BACKEND_STORE_URI": uri}


def main(argv: Sequence[str] | None = None,
         execute: Callable[[str, list[str], dict[str, str]], object] = os.execvpe) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        env = server_env(os.environ, args)
    except PipelineError as exc:
        print(f"mlflow-server: error: {exc}", file=sys.stderr, flush=True)
        return 2
    execute("mlflow", ["mlflow", "server", *args], env)  # replaces this process
    return 0


if __name__ == "__main__":
    sys.exit(main())
