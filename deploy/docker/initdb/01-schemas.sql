-- First start of the compose stack's PostgreSQL: what Dagster's storage needs before the
-- pipeline's own migrations (sql/, applied on first use) have run.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS dagster;
