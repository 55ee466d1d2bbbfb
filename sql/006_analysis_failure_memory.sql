-- 006: failure memory for analyses. A failed analysis says what kind of failure it was and
-- when it may be asked again, so a run over unchanged data does not re-ask (and, for the LLM,
-- re-pay for) answers that failed a moment ago. A new analyzer version or method (model) has
-- its own rows, so it starts with no memory.
ALTER TABLE analyses
    ADD COLUMN error_class text,              -- outage, invalid_answer, refused, truncated, ...
    ADD COLUMN next_attempt_at timestamptz;   -- failed rows: not asked again before this

ALTER TABLE analyses ADD CONSTRAINT analyses_memory_only_for_failures
    CHECK (status = 'failed' OR (error_class IS NULL AND next_attempt_at IS NULL));

-- Failures stored before this migration may be retried at once, as they were before.
UPDATE analyses SET error_class = 'unknown' WHERE status = 'failed';

CREATE INDEX analyses_deferred ON analyses (artist_slug, analyzer, next_attempt_at)
    WHERE status = 'failed';
