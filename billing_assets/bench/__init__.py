"""``billing-assets bench``: the pipeline timed side by side with the same chain in plain Spark and DuckDB."""
