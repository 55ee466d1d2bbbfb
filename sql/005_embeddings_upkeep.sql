-- 005: HNSW indexes rebuilt with measured parameters; a chorus stored once per track; the
-- embeddings' copies of tracks columns kept current by the database itself.

-- Repeated chunks (a chorus was stored once per repetition before lyric_embeddings stored
-- each distinct text of a track once).
DELETE FROM lyric_chunks a USING lyric_chunks b
WHERE a.track_id = b.track_id AND a.model_id = b.model_id AND a.content = b.content
  AND a.chunk_index > b.chunk_index;

-- m = 32, ef_construction = 256 instead of pgvector's defaults (16, 64): better recall at the
-- same query latency, for a longer build. README, Benchmarks, quotes both settings as
-- `rap-pipeline benchmark search` measured them.
DROP INDEX lyric_chunks_hnsw_all_minilm_l6_v2;
CREATE INDEX lyric_chunks_hnsw_all_minilm_l6_v2 ON lyric_chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 32, ef_construction = 256)
    WHERE model_id = 'sentence-transformers/all-MiniLM-L6-v2';
DROP INDEX track_embeddings_hnsw_all_minilm_l6_v2;
CREATE INDEX track_embeddings_hnsw_all_minilm_l6_v2 ON track_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 32, ef_construction = 256)
    WHERE model_id = 'sentence-transformers/all-MiniLM-L6-v2';

-- A track that stops being kept loses its vectors at once (search never returns it), and a
-- changed release year reaches the filter copies at once, without re-embedding. Before this,
-- lyric_embeddings did both on its next run, with joins whose plans degraded on tables the
-- planner had no statistics for yet (a first backfill).
CREATE FUNCTION sync_embedding_copies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'kept' THEN
        DELETE FROM lyric_chunks WHERE track_id = NEW.id;
        DELETE FROM track_embeddings WHERE track_id = NEW.id;
    ELSIF NEW.release_year IS DISTINCT FROM OLD.release_year THEN
        UPDATE lyric_chunks SET release_year = NEW.release_year WHERE track_id = NEW.id;
        UPDATE track_embeddings SET release_year = NEW.release_year WHERE track_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tracks_sync_embedding_copies
    AFTER UPDATE OF status, release_year ON tracks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.release_year IS DISTINCT FROM NEW.release_year)
    EXECUTE FUNCTION sync_embedding_copies();

-- what the trigger would have done to rows written before it
DELETE FROM lyric_chunks c USING tracks t WHERE c.track_id = t.id AND t.status <> 'kept';
DELETE FROM track_embeddings e USING tracks t WHERE e.track_id = t.id AND t.status <> 'kept';
UPDATE lyric_chunks c SET release_year = t.release_year FROM tracks t
WHERE c.track_id = t.id AND c.release_year IS DISTINCT FROM t.release_year;
UPDATE track_embeddings e SET release_year = t.release_year FROM tracks t
WHERE e.track_id = t.id AND e.release_year IS DISTINCT FROM t.release_year;
