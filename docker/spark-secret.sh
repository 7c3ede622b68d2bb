#!/bin/sh
# Entry point of the pipeline image (and usable anywhere): with SPARK_AUTH_SECRET set, every
# Spark process started through it (master, worker, spark-submit) authenticates its RPC with
# that shared secret. The secret goes into a spark-defaults.conf that only this user can read,
# never into a command line that `ps` shows. Without it, the command runs unchanged.
# Compose passes BIND_ADDRESS, where it publishes the master: beyond loopback, no secret, no start.
set -eu
secret="${SPARK_AUTH_SECRET:-}"
case "${BIND_ADDRESS:-127.0.0.1}" in
  127.*|::1|localhost) ;;
  *) if [ "${#secret}" -lt 16 ]; then
       echo "spark: error: BIND_ADDRESS=$BIND_ADDRESS publishes Spark beyond this host; set SPARK_AUTH_SECRET (at least 16 characters)" >&2
       exit 2
     fi ;;
esac
if [ -n "$secret" ]; then
  SPARK_CONF_DIR="${SPARK_SECRET_CONF_DIR:-${HOME:-/tmp}/.spark-secret-conf}"
  export SPARK_CONF_DIR
  umask 077
  mkdir -p "$SPARK_CONF_DIR"
  {
    echo "spark.authenticate true"
    echo "spark.authenticate.secret $secret"
    # Reachable from elsewhere, the web UIs must not stop applications or workers.
    echo "spark.ui.killEnabled false"
  } > "$SPARK_CONF_DIR/spark-defaults.conf"
fi
exec "$@"
