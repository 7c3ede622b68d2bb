# Installed by `make setup` into the environment's Spark (pyspark/conf), which sources it
# before every JVM it starts: a plain spark-submit, pyspark, or a job run with python.
# Spark's UI and driver listen on SPARK_LOCAL_IP, and on every interface when it is unset;
# loopback unless it is set. On a cluster whose executors are on other hosts, set
# SPARK_LOCAL_IP to this host's address (docs/cluster.md).
SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
