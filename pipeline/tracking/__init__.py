"""Everything that writes to MLflow during a sweep (the report only reads).

vocab (tag, status and artifact names), store (the store, experiments, run look-ups),
spool (retry, spool and replay), claims (heartbeats, claims, orphans), runs (the driver's
parent/child bookkeeping), models (logging a model), recorder (a run's records from rank 0;
a do-nothing twin on the other ranks).
"""
