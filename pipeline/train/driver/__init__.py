"""The sweep's driver: plans trials, sizes the launches to Spark's slots, runs Horovod over
Spark, halving and racing. May import pipeline.config, tasks, tracking and train's contract;
never TensorFlow (its memory would be every sweep's) and never mlflow (tracking has it)."""
