"""The spark-submit entry points; each module has a ``main(argv)`` that tests call."""
