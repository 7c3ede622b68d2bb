"""Shared test helpers: tiny datasets as real files, job entry points, real servers.

Imported by the tests as a package (``from tests.helpers import write_npz``); the fixtures
that use them are in tests/conftest.py.
"""

from tests.helpers.data import make_images, prepare_tiny, write_data_config, write_npz
from tests.helpers.jobs import ROOT, SPARK_SUBMIT, load_job, rank_job, submit_env, trial
from tests.helpers.servers import MlflowServer, chromium, free_port

__all__ = ["ROOT", "SPARK_SUBMIT", "MlflowServer", "chromium", "free_port", "load_job",
           "make_images", "prepare_tiny", "rank_job", "submit_env", "trial", "write_data_config",
           "write_npz"]
