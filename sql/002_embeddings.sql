-- 002: lyric embeddings (pgvector) and full-text search over cleaned lyrics.
CREATE EXTENSION IF NOT EXISTS vector;

-- One vector per (track, model). Vectors of different models never mix: every row names its
-- model and dimension, and every index and query is restricted to one model.
CREATE TABLE track_embeddings (
    track_id     bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model_id     text NOT NULL,
    dimension    integer NOT NULL CHECK (dimension > 0),
    lyrics_hash  text NOT NULL,  -- tracks.lyrics_hash that was embedded
    -- copies of tracks columns, so filters sit on the same table as the vector index
    artist_slug  text NOT NULL,
    release_year smallint,
    chunk_count  integer NOT NULL CHECK (chunk_count > 0),
    embedding    vector NOT NULL CHECK (vector_dims(embedding) = dimension),
    embedded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, model_id)
);
CREATE INDEX track_embeddings_artist ON track_embeddings (model_id, artist_slug);

-- The chunks a track was split into (stanzas that fit the model), each with its vector.
CREATE TABLE lyric_chunks (
    track_id     bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model_id     text NOT NULL,
    chunk_index  integer NOT NULL CHECK (chunk_index >= 0),
    first_line   integer NOT NULL,  -- index into the non-blank lines of tracks.lyrics_clean
    line_count   integer NOT NULL CHECK (line_count > 0),
    content      text NOT NULL,
    artist_slug  text NOT NULL,
    release_year smallint,
    dimension    integer NOT NULL CHECK (dimension > 0),
    embedding    vector NOT NULL CHECK (vector_dims(embedding) = dimension),
    PRIMARY KEY (track_id, model_id, chunk_index)
);
CREATE INDEX lyric_chunks_artist ON lyric_chunks (model_id, artist_slug);

-- HNSW (cosine) for the default model, with pgvector's default m and ef_construction (not
-- tuned yet; see README, Benchmarks). Other models get theirs when first embedded.
CREATE INDEX lyric_chunks_hnsw_all_minilm_l6_v2 ON lyric_chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
    WHERE model_id = 'sentence-transformers/all-MiniLM-L6-v2';
CREATE INDEX track_embeddings_hnsw_all_minilm_l6_v2 ON track_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
    WHERE model_id = 'sentence-transformers/all-MiniLM-L6-v2';

-- Precomputed neighbours for recommendations (asset similar_tracks).
CREATE TABLE similar_tracks (
    track_id     bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model_id     text NOT NULL,
    rank         smallint NOT NULL CHECK (rank > 0),
    neighbour_id bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    similarity   real NOT NULL,
    PRIMARY KEY (track_id, model_id, rank)
);

-- Full-text side of hybrid search.
ALTER TABLE tracks ADD COLUMN lyrics_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', coalesce(title, '') || ' ' || coalesce(lyrics_clean, ''))) STORED;
CREATE INDEX tracks_lyrics_tsv ON tracks USING gin (lyrics_tsv);
