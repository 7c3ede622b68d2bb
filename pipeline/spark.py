"""The one place that builds a SparkSession, from conf/spark/*.conf plus overrides."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from pipeline.errors import ConfigError
from pipeline.files import conf_dir

DEFAULT_CONF = conf_dir() / "spark" / "local.conf"  # in a checkout and in the wheel


def read_conf(path: str | Path) -> dict[str, str]:
    """Parse a spark-defaults style file: ``key value`` per line, ``#`` comments."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: Spark configuration file not found")
    settings = {}
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ConfigError(f"{p}:{lineno}: expected 'key value'")
        settings[parts[0]] = parts[1].strip()
    return settings


def build_session(conf_file: str | Path | None = None,
                  overrides: dict[str, str] | None = None) -> SparkSession:
    """Get or create the session.

    Values already set by spark-submit (``--master``, ``--conf``) win over the file,
    so the same job runs unchanged in local mode and on a cluster.
    """
    conf_path = conf_file or os.environ.get("PIPELINE_SPARK_CONF") or DEFAULT_CONF
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Start the JVM gateway first: only then does SparkConf() see what spark-submit set.
    SparkContext._ensure_initialized()
    submitted = SparkConf()
    conf = SparkConf()
    for key, value in {**read_conf(conf_path), **auth_settings(os.environ),
                       **(overrides or {})}.items():
        if not submitted.contains(key):
            conf.set(key, value)
    master = submitted.get("spark.master") or conf.get("spark.master") or "local[*]"
    _executor_python(submitted.get("spark.pyspark.python") or conf.get("spark.pyspark.python"),
                     master)
    builder = SparkSession.builder.config(conf=conf).master(master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def auth_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Spark's shared secret from ``SPARK_AUTH_SECRET`` (the compose cluster's, see
    docker/spark-secret.sh): from the environment, so that no properties file given to
    spark-submit and no command line carries it."""
    secret = environ.get("SPARK_AUTH_SECRET")
    return {"spark.authenticate": "true", "spark.authenticate.secret": secret} if secret else {}


def _executor_python(configured: str | None, master: str) -> None:
    """The interpreter executors start Python workers (and Horovod ranks) with.

    spark.pyspark.python, wherever it was set, as spark-submit passes it on; else, in local
    mode, this very interpreter (executors are threads of this JVM on this machine). On a
    cluster without a setting Spark's own default applies (``python3`` on the executors'
    PATH): the driver's path means nothing there.
    """
    if configured:
        os.environ["PYSPARK_PYTHON"] = configured
    elif master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
