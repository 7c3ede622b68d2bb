"""Everything that writes to MLflow during a sweep (the report only reads).

vocab (tag, status and artifact names), store (the store, experiments, run look-ups, the
client handle), spool (retry, spool and replay), claims (heartbeats, claims, orphans), resume
(starting or resuming a configuration's run), runs (the driver's parent/child bookkeeping),
models and model_replay (logging a model; replaying one outside the driver), recorder (a run's
records from rank 0; a do-nothing twin on the other ranks).

May import: mlflow, pipeline.config, pipeline.tasks, and pipeline.train's TensorFlow-free
contract and checkpoint layout. The only package that imports mlflow besides the report.
"""
