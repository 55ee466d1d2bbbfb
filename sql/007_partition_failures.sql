-- 007: partitions whose step failed inside a run that covered several partitions. Such a run
-- finishes the other partitions (Dagster marks a whole multi-partition step as one outcome),
-- so the failure is kept here, with a back-off, until the retry sensor has run the partition
-- again and it succeeded.
CREATE TABLE partition_failures (
    asset           text NOT NULL,          -- the asset's name, e.g. tracks
    artist_slug     text NOT NULL,
    error_class     text NOT NULL,          -- the exception's class name
    message         text NOT NULL,          -- its first line, shortened
    attempts        integer NOT NULL DEFAULT 1 CHECK (attempts > 0),
    failed_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL,
    PRIMARY KEY (asset, artist_slug)
);
CREATE INDEX partition_failures_due ON partition_failures (next_attempt_at);
