"""Sweeps over activation, loss and initializer choices: Spark, Horovod, MLflow."""

__version__ = "0.1.0"
