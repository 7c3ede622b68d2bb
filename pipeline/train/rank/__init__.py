"""One Horovod rank: builds the model, trains, evaluates, checkpoints, and (rank 0) records
through a tracking recorder. May import TensorFlow and Horovod (distributed.py holds every
Horovod call), pipeline.model, data and tracking; never mlflow directly."""
