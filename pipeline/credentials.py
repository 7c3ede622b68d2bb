"""Secrets going into connection strings: URL-encoded, and never the examples' placeholders.

A password is put into a database URI (``postgresql+psycopg2://user:password@host/db``) only
URL-encoded: ``@``, ``/``, ``:``, ``#`` or ``%`` in it would otherwise end the password early
or change the host. And the placeholders ``.env.example`` ships (``change-me``...) are refused
wherever a secret is read, so a copied example never becomes a real password.

Standard library only: ``python3 -m pipeline.credentials check-env .env`` runs before
``docker compose up`` on a machine without the project's virtualenv.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from pipeline.errors import PipelineError

# Every secret value in .env.example (tests/unit/test_credentials.py keeps them in step).
PLACEHOLDERS = frozenset({"change-me", "change-me-too", "a-long-random-string"})
SECRET_WORDS = ("PASSWORD", "SECRET")
MIN_SPARK_SECRET = 16


def check_secret(name: str, value: str | None) -> str:
    """``value``, unless it is missing or a placeholder (PipelineError, one line)."""
    if not value:
        raise PipelineError(f"{name}: not set")
    if value in PLACEHOLDERS:
        raise PipelineError(f"{name}: still the placeholder {value!r} from .env.example; set a "
                            "secret of your own")
    return value


def database_uri(driver: str, user: str, password: str, host: str, port: int | str,
                 database: str) -> str:
    """A SQLAlchemy URI with user, password and database name URL-encoded."""
    def enc(part: str) -> str:
        return quote(part, safe="")

    return f"{driver}://{enc(user)}:{enc(password)}@{host}:{port}/{enc(database)}"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines as Compose reads them (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def env_problems(values: Mapping[str, str]) -> list[str]:
    """Secrets (``*PASSWORD*``, ``*SECRET*``) set to a placeholder, and a published bind
    without authentication, one line each."""
    problems = []
    for key, value in values.items():
        if any(word in key for word in SECRET_WORDS) and value in PLACEHOLDERS:
            problems.append(f"{key}: still the placeholder {value!r} from .env.example; set a "
                            "secret of your own")
    return problems + exposure_problems(values)


def is_loopback(address: str) -> bool:
    if address.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problems(values: Mapping[str, str]) -> list[str]:
    """Compose publishes Spark's master (RPC and web UI) and MLflow on ``BIND_ADDRESS``.
    Beyond loopback, anyone who reaches it could submit code to the workers or rewrite the
    runs, so a non-loopback bind needs MLflow's basic auth and Spark's shared secret."""
    bind = values.get("BIND_ADDRESS") or "127.0.0.1"
    if is_loopback(bind):
        return []
    missing = []
    if not values.get("MLFLOW_AUTH"):
        missing.append("MLFLOW_AUTH=1 (MLflow basic auth)")
    secret = values.get("SPARK_AUTH_SECRET", "")
    if len(secret) < MIN_SPARK_SECRET or secret in PLACEHOLDERS:
        missing.append(f"SPARK_AUTH_SECRET (Spark's shared secret, at least {MIN_SPARK_SECRET} "
                       "characters of your own)")
    if not missing:
        return []
    return [f"BIND_ADDRESS={bind}: publishes Spark and MLflow beyond this host; set "
            f"{' and '.join(missing)}, or keep BIND_ADDRESS=127.0.0.1"]


def main(argv: Sequence[str] | None = None) -> int:
    """``check-env FILE``: exit 2 with one line per placeholder secret, 0 if there is none."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "check-env":
        print("usage: python -m pipeline.credentials check-env FILE", file=sys.stderr)
        return 2
    path = Path(args[1])
    if not path.is_file():
        print(f"credentials: error: {path}: not found (copy .env.example and set its secrets)",
              file=sys.stderr)
        return 2
    problems = env_problems(read_env_file(path))
    for problem in problems:
        print(f"credentials: error: {path}: {problem}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
