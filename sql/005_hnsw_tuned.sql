-- 005: the default model's HNSW indexes rebuilt with measured parameters, and repeated chunks
-- (a chorus stored once per repetition before lyric_embeddings stored each text once) removed.
--
-- m = 32, ef_construction = 256 instead of pgvector's defaults (16, 64): better recall at the
-- same query latency, for a longer build. README, Benchmarks, quotes both
-- settings as `rap-pipeline benchmark search` measured them.
DELETE FROM lyric_chunks a USING lyric_chunks b
WHERE a.track_id = b.track_id AND a.model_id = b.model_id AND a.content = b.content
  AND a.chunk_index > b.chunk_index;

DROP INDEX lyric_chunks_hnsw_all_minilm_l6_v2;
CREATE INDEX lyric_chunks_hnsw_all_minilm_l6_v2 ON lyric_chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 32, ef_construction = 256)
    WHERE model_id = 'sentence-transformers/all-MiniLM-L6-v2';
DROP INDEX track_embeddings_hnsw_all_minilm_l6_v2;
CREATE INDEX track_embeddings_hnsw_all_minilm_l6_v2 ON track_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 32, ef_construction = 256)
    WHERE model_id = 'sentence-transformers/all-MiniLM-L6-v2';
