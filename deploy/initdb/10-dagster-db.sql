-- Dagster's run and event storage lives in its own database beside the Iceberg catalog's.
CREATE DATABASE dagster OWNER posttrain;
