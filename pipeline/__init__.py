"""Sweeps over activation, loss and initializer choices: Spark data prep, Horovod training, MLflow."""

__version__ = "0.1.0"
