-- 004: analyses of kept tracks, one row per (track, analyzer, analyzer version, method).

-- A result is current when its version and method are the analyzer's current ones and its
-- input hash equals the track's lyrics hash (for hybrid: the hash of the results it combined).
-- A failure is a row with status 'failed' and its error, never a result.
CREATE TABLE analyses (
    track_id         bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    artist_slug      text NOT NULL,
    analyzer         text NOT NULL,  -- rule_based, emotion, llm, hybrid
    analyzer_version text NOT NULL,
    method           text NOT NULL,  -- rules, transformers:<model>, lexicon:nrc, openai:<model>, ...
    input_hash       text NOT NULL,
    status           text NOT NULL CHECK (status IN ('ok', 'failed')),
    result           jsonb,
    error            text,
    attempts         integer NOT NULL DEFAULT 1 CHECK (attempts > 0),
    seconds          real NOT NULL DEFAULT 0 CHECK (seconds >= 0),
    usage            jsonb,          -- LLM: tokens, estimated cost, cached
    analyzed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, analyzer, analyzer_version, method),
    CONSTRAINT analyses_result_iff_ok CHECK ((status = 'ok') = (result IS NOT NULL)),
    CONSTRAINT analyses_failure_says_why CHECK (status = 'ok' OR error IS NOT NULL)
);
CREATE INDEX analyses_artist ON analyses (artist_slug, analyzer, analyzer_version, method);
