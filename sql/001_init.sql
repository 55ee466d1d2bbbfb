-- 001: artists (the dynamic partitions' registry) and tracks with cleaned lyrics.

-- Dagster's run/event/schedule storage lives in its own schema of the same database.
CREATE SCHEMA IF NOT EXISTS dagster;

CREATE TABLE artists (
    slug              text PRIMARY KEY CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    display_name      text NOT NULL,
    genius_artist_id  bigint UNIQUE,
    spotify_artist_id text UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tracks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    artist_slug      text NOT NULL REFERENCES artists (slug) ON DELETE CASCADE,
    source           text NOT NULL CHECK (source IN ('corpus', 'genius')),
    source_id        text NOT NULL,
    title            text NOT NULL,
    album            text,
    release_date     date,
    release_year     smallint CHECK (release_year BETWEEN 1900 AND 2100),
    url              text,
    lyrics_raw       text,
    lyrics_clean     text,
    -- sections as [{"header", "kind", "performer", "first_line", "line_count"}] over lyrics_clean
    structure        jsonb,
    -- sha256 of the normalized lyrics (case, punctuation and whitespace folded)
    lyrics_hash      text,
    word_count       integer CHECK (word_count >= 0),
    line_count       integer CHECK (line_count >= 0),
    status           text NOT NULL CHECK (status IN ('kept', 'rejected', 'fetch_failed')),
    status_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    kept_lyrics_hash text GENERATED ALWAYS AS (CASE WHEN status = 'kept' THEN lyrics_hash END) STORED,
    CONSTRAINT tracks_reason_iff_not_kept CHECK ((status = 'kept') = (status_reason IS NULL)),
    CONSTRAINT tracks_kept_have_lyrics CHECK (status <> 'kept' OR (lyrics_clean <> '' AND lyrics_hash IS NOT NULL)),
    CONSTRAINT tracks_unique_source_id UNIQUE (source, source_id),
    -- the same lyrics are kept once per artist; deferred so a partition can be rewritten in
    -- one transaction in any row order
    CONSTRAINT tracks_unique_lyrics_per_artist UNIQUE (artist_slug, kept_lyrics_hash)
        DEFERRABLE INITIALLY DEFERRED
);

CREATE INDEX tracks_artist_status ON tracks (artist_slug, status);
