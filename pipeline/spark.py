"""The one place that builds a SparkSession, from conf/spark/*.conf plus overrides."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from pipeline.errors import ConfigError

DEFAULT_CONF = Path(__file__).resolve().parent.parent / "conf" / "spark" / "local.conf"


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
    # Executors (and so Horovod ranks) must run the driver's Python, with the same packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Start the JVM gateway first: only then does SparkConf() see what spark-submit set.
    SparkContext._ensure_initialized()
    submitted = SparkConf()
    conf = SparkConf()
    for key, value in {**read_conf(conf_path), **(overrides or {})}.items():
        if not submitted.contains(key):
            conf.set(key, value)
    builder = SparkSession.builder.config(conf=conf)
    if not submitted.contains("spark.master") and not conf.contains("spark.master"):
        builder = builder.master("local[2]")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark

