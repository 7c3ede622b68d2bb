"""Training: the Horovod worker (rank/), the driver-side sweep loop (driver/), and what both
share (contract, checkpoints, progress).

May import: pipeline.config, data, model, tasks, and tracking for every MLflow need; never
mlflow itself (tests/unit/test_layering.py). driver/ never imports TensorFlow.
"""
