"""Data: raw readers, Spark preparation into sharded Parquet, and the per-rank training feed."""
