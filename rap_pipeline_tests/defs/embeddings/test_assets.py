"""lyric_embeddings and similar_tracks with the real MiniLM model on real PostgreSQL+pgvector."""

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.paths import SAMPLE_CORPUS_DIR
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.partitions import range_tags
from rap_pipeline.defs.embeddings.assets import lyric_embeddings, similar_tracks
from rap_pipeline.defs.embeddings.model import DEFAULT_MODEL, index_name, load_model
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline.search import search, similar, vector_search
from rap_pipeline_tests.conftest import add_artists

ARTISTS = ("K.O. the Poet", "Big Tundra", "Señor Cálido")


def _run(database_url: str, instance: dg.DagsterInstance, corpus: Path, slug: str):
    result = dg.materialize(
        [tracks, lyric_embeddings, similar_tracks],
        partition_key=slug,
        instance=instance,
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(kind="corpus", corpus_path=str(corpus)),
            "embedding_model": EmbeddingModelResource(),
        },
    )
    assert result.success
    return result.asset_materializations_for_node("lyric_embeddings")[0].metadata, result


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    for name in ("k-o-the-poet", "big-tundra", "senor-calido"):
        (directory / f"{name}.jsonl").write_bytes(
            (SAMPLE_CORPUS_DIR / f"{name}.jsonl").read_bytes()
        )
    return directory


@pytest.mark.slow
def test_embeddings_cover_kept_tracks_are_incremental_and_searchable(
    database_url: str, instance: dg.DagsterInstance, corpus: Path
):
    slugs = add_artists(database_url, instance, *ARTISTS)
    for slug in slugs:
        metadata, result = _run(database_url, instance, corpus, slug)
        assert metadata["tracks_embedded"].value == 9
        assert metadata["chunks"].value > 9  # whole songs: several chunks each
        assert all(check.passed for check in result.get_asset_check_evaluations())

    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT count(*) FROM tracks WHERE status = 'kept'").fetchone()[0]
        vectors, dims, models = conn.execute(
            "SELECT count(*), min(dimension), array_agg(DISTINCT model_id) FROM track_embeddings"
        ).fetchone()
        assert (vectors, dims, models) == (kept, 384, ["sentence-transformers/all-MiniLM-L6-v2"])
        # every line of every kept song is in a stored chunk, or in a repeat of one (a chorus
        # is stored once), and each stored chunk points at its own lines
        repeats = 0
        for lyrics, spans, texts in conn.execute(
            """SELECT t.lyrics_clean,
                      array_agg(ARRAY[c.first_line, c.line_count] ORDER BY c.chunk_index),
                      array_agg(c.content ORDER BY c.chunk_index)
               FROM tracks t JOIN lyric_chunks c ON c.track_id = t.id
               WHERE t.status = 'kept' GROUP BY t.id"""
        ):
            lines = [line for line in lyrics.split("\n") if line]
            assert len(set(texts)) == len(texts)
            at = {first: content for (first, _), content in zip(spans, texts, strict=True)}
            for (first, count), content in zip(spans, texts, strict=True):
                assert lines[first : first + count] == content.split("\n")
            position = 0
            while position < len(lines):
                if position in at:
                    position += len(at[position].split("\n"))
                    continue
                repeated = next(
                    t
                    for t in texts
                    if lines[position : position + t.count("\n") + 1] == t.split("\n")
                )
                position += repeated.count("\n") + 1
                repeats += 1
        assert repeats > 0  # the sample corpus has choruses
        # the last partition sees every other vector: 10 neighbours per track, never itself
        per_track = conn.execute(
            """SELECT count(*), bool_or(s.neighbour_id = s.track_id) FROM similar_tracks s
               JOIN tracks t ON t.id = s.track_id WHERE t.artist_slug = %s GROUP BY s.track_id""",
            (slugs[-1],),
        ).fetchall()
        assert per_track == [(10, False)] * 9

    # unchanged partition: nothing is embedded again
    metadata, _ = _run(database_url, instance, corpus, slugs[0])
    assert metadata["tracks_embedded"].value == 0

    # one changed song: only it is embedded again
    path = corpus / "k-o-the-poet.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    changed = next(r for r in records if r["title"] == "Mama's Kitchen")
    changed["lyrics"] += "\n\n[Outro]\nOne more plate for Mama, one more light in the window"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    metadata, _ = _run(database_url, instance, corpus, slugs[0])
    assert metadata["tracks_embedded"].value == 1

    hits = search("songs about losing a brother", limit=3, database_url=database_url)
    assert hits[0].title == "Letter to My Brother"
    assert "brother" in hits[0].matched_lines.lower()
    prison = search("my brother locked up in a prison cell", limit=1, database_url=database_url)
    assert prison[0].title == "Letters to Cell Block C"

    only = search(
        "party",
        artist="senor-calido",
        year_from=2005,
        year_to=2010,
        limit=20,
        database_url=database_url,
    )
    assert only and {h.artist_slug for h in only} == {"senor-calido"}
    assert all(2005 <= h.year <= 2010 for h in only)
    # the filtered search still returns every match, not the few left after filtering
    with psycopg.connect(database_url) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM tracks WHERE status = 'kept' AND artist_slug = 'senor-calido' "
            "AND release_year BETWEEN 2005 AND 2010"
        ).fetchone()[0]
    assert len(only) == expected

    hybrid = search("Marcus", hybrid=True, limit=5, database_url=database_url)
    assert any(h.title in ("Letter to My Brother", "Brother's Keeper") for h in hybrid[:2])

    neighbours = similar("k-o-the-poet/Letter to My Brother", limit=3, database_url=database_url)
    assert len(neighbours) == 3 and all(h.title != "Letter to My Brother" for h in neighbours)

    # when a few tracks fill the first nearest chunks, the search fetches more chunks until it
    # has `limit` tracks: with one chunk per wanted track at first, asking for every kept track
    # needs that, and gets every one of them
    model = load_model()
    with psycopg.connect(database_url) as conn:
        everything = vector_search(
            conn, model, model.encode(["brother"])[0], limit=kept, chunks_per_track=1
        )
    assert len({hit.track_id for hit in everything}) == kept

    # the database keeps the embeddings' copies of tracks current: a track no longer kept
    # loses its vectors at once, a new release year reaches the filter copies
    with psycopg.connect(database_url) as conn:
        dropped, moved = everything[0].track_id, everything[1].track_id
        conn.execute(
            "UPDATE tracks SET status = 'rejected', status_reason = 'remix' WHERE id = %s",
            (dropped,),
        )
        conn.execute("UPDATE tracks SET release_year = 1979 WHERE id = %s", (moved,))
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM lyric_chunks WHERE track_id = %(d)s)
                    + (SELECT count(*) FROM track_embeddings WHERE track_id = %(d)s),
                      (SELECT array_agg(DISTINCT release_year) FROM lyric_chunks
                       WHERE track_id = %(m)s),
                      (SELECT array_agg(DISTINCT release_year) FROM track_embeddings
                       WHERE track_id = %(m)s)""",
            {"d": dropped, "m": moved},
        ).fetchone()
    assert counts == (0, [1979], [1979])


def _embed(database_url: str, instance: dg.DagsterInstance, first: str, last: str, **model):
    result = dg.materialize(
        [lyric_embeddings],
        instance=instance,
        tags=range_tags(first, last),
        resources={
            "database": DatabaseResource(url=database_url),
            "embedding_model": EmbeddingModelResource(**model),
        },
    )
    assert result.success
    (index_check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "lyric_embeddings_hnsw_index_present"
    ]
    return result, index_check


def _chunk_index_present(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = %s",
                (index_name("lyric_chunks", DEFAULT_MODEL),),
            ).fetchone()[0]
        )


@pytest.mark.slow
def test_a_large_backlog_is_written_without_the_chunk_index_then_builds_it(
    database_url: str, instance: dg.DagsterInstance, corpus: Path
):
    slugs = add_artists(database_url, instance, *ARTISTS)  # a range follows this order
    assert dg.materialize(
        [tracks],
        instance=instance,
        tags=range_tags(slugs[0], slugs[-1]),
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(kind="corpus", corpus_path=str(corpus)),
        },
    ).success
    assert _chunk_index_present(database_url)  # the migration's
    # 27 kept tracks wait, none is embedded: a bulk load at this threshold
    result, index_check = _embed(database_url, instance, slugs[0], slugs[0], bulk_min_tracks=10)
    (materialization,) = result.asset_materializations_for_node("lyric_embeddings")
    assert materialization.metadata["chunk_index"].value == "left out (bulk load)"
    assert not _chunk_index_present(database_url)  # 18 still wait: not built yet
    assert not index_check.passed and index_check.severity == dg.AssetCheckSeverity.WARN
    assert "18 tracks wait" in index_check.metadata["bulk_load"].value
    # search stays right meanwhile (an exact scan)
    hits = search("songs about losing a brother", limit=3, database_url=database_url)
    assert hits[0].title == "Letter to My Brother"

    result, index_check = _embed(database_url, instance, slugs[1], slugs[2], bulk_min_tracks=10)
    assert _chunk_index_present(database_url)  # nothing waits: built once, in bulk
    assert index_check.passed
    built = [
        m.metadata["index_build_seconds"].value
        for m in result.asset_materializations_for_node("lyric_embeddings")
    ]
    assert sum(built) > 0
    with psycopg.connect(database_url) as conn:
        # With current statistics a 129-row table is cheaper to sort than to walk by HNSW;
        # disabling sorts leaves the index as the only ordered path, whatever autovacuum did.
        conn.execute("ANALYZE lyric_chunks")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_sort = off")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT track_id FROM lyric_chunks WHERE model_id = %s "
                "ORDER BY embedding::vector(384) <=> (SELECT embedding FROM lyric_chunks LIMIT 1)"
                " LIMIT 5",
                (DEFAULT_MODEL,),
            )
        )
    assert index_name("lyric_chunks", DEFAULT_MODEL) in plan
    hits = search("songs about losing a brother", limit=3, database_url=database_url)
    assert hits[0].title == "Letter to My Brother"
