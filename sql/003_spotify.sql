-- 003: Spotify enrichment of kept tracks, and the Spotify artists they point to.

-- One row per enriched track: the outcome of its latest attempt and, when matched, what
-- Spotify's search returned. A row is picked again when its retry time has come (not_found
-- backs off 1, 7, 30 days; errors retry next run) or, once matched, when it is stale.
CREATE TABLE spotify_tracks (
    track_id               bigint PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    artist_slug            text NOT NULL,
    status                 text NOT NULL
        CHECK (status IN ('matched', 'not_found', 'error', 'unavailable')),
    source                 text NOT NULL,      -- spotify, or sample_catalog for offline runs
    payload_version        smallint NOT NULL,  -- shape of what we store; a bump re-enriches
    attempts               integer NOT NULL DEFAULT 1 CHECK (attempts > 0),
    checked_at             timestamptz NOT NULL DEFAULT now(),  -- latest attempt
    enriched_at            timestamptz,        -- when the stored match was fetched
    retry_after            timestamptz,        -- not picked again before this time
    query_title            text NOT NULL,      -- tracks.title that was searched
    match_score            real CHECK (match_score BETWEEN 0 AND 100),
    best_candidate         jsonb,              -- not_found: the best hit and its scores
    error                  text,
    spotify_track_id       text,
    spotify_title          text,
    album                  text,
    album_id               text,
    release_date           text,               -- as Spotify gives it: 2011, 2011-05 or 2011-05-03
    release_date_precision text,
    popularity             smallint CHECK (popularity BETWEEN 0 AND 100),
    explicit               boolean,
    duration_ms            integer CHECK (duration_ms >= 0),
    isrc                   text,
    spotify_artist_ids     text[],
    CONSTRAINT spotify_tracks_matched_complete
        CHECK (status <> 'matched' OR (spotify_track_id IS NOT NULL AND enriched_at IS NOT NULL)),
    CONSTRAINT spotify_tracks_failure_says_why
        CHECK (status NOT IN ('error', 'unavailable') OR error IS NOT NULL)
);
CREATE INDEX spotify_tracks_artist ON spotify_tracks (artist_slug, status);
CREATE INDEX spotify_tracks_spotify_id ON spotify_tracks (spotify_track_id);

-- Single-artist lookups (genres, popularity, followers), when the API allows them.
CREATE TABLE spotify_artists (
    spotify_artist_id text PRIMARY KEY,
    name              text NOT NULL,
    genres            text[] NOT NULL DEFAULT '{}',
    popularity        smallint CHECK (popularity BETWEEN 0 AND 100),
    followers         bigint CHECK (followers >= 0),
    fetched_at        timestamptz NOT NULL DEFAULT now()
);
