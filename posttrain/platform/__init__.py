"""The posttrain engine: plain Python over Arrow and Iceberg, never importing Dagster.

Every transformation here can be called from a Dagster asset, the CLI, a notebook or a
Ray worker, and is tested and benchmarked as a plain function.
"""
