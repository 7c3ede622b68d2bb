"""The report of a sweep: reads the runs from MLflow (read only), computes the statistics and
explanations, draws and writes the page. May import mlflow (reading), scipy, statsmodels,
pandas and matplotlib; never TensorFlow or Horovod."""
