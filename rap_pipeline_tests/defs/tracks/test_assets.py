"""The tracks asset on the corpus source, materialized with real resources."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import psycopg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline.defs.tracks.sources import FetchFailure, FetchResult, RawTrack
from rap_pipeline.defs.tracks.store import prepare_rows, write_partition
from rap_pipeline_tests.conftest import add_artists

VERSE = (
    "Rolled out the door with a dream in my pocket\n"
    "City lights flicker like a spark in a socket\n"
    "Mama said son you can run but don't drop it\n"
    "Every single step is a coin in the deposit\n"
)


def song(n: int, theme: str) -> str:
    return f"[Verse 1]\n{VERSE}Song number {n} about {theme} and the road ahead\n\n[Chorus]\n" + (
        f"We keep it {theme}, we keep it moving\nNobody stopping what the people are doing\n" * 2
    )


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def materialize(database_url: str, instance: dg.DagsterInstance, corpus: Path, slug: str):
    return dg.materialize(
        [tracks],
        partition_key=slug,
        instance=instance,
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(kind="corpus", corpus_path=str(corpus)),
        },
    )


def stored(database_url: str, slug: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            # corpus ids are stored as "<artist slug>/<id>"; the tests name tracks by <id>
            "SELECT split_part(source_id, '/', 2), title, status, status_reason, lyrics_clean, "
            "lyrics_hash, updated_at, created_at, id FROM tracks WHERE artist_slug = %s "
            "ORDER BY source_id",
            (slug,),
        ).fetchall()


def test_corpus_partition_is_cleaned_classified_and_idempotent(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    (slug,) = add_artists(database_url, instance, "Señor Cálido")
    write_jsonl(
        corpus_dir / "a.jsonl",
        [
            {
                "artist": "Señor Cálido",
                "title": "Uno",
                "lyrics": song(1, "hustle"),
                "id": "1",
                "release_date": "2001-02-03",
                "album": "Sol",
            },
            {
                "artist": "Señor Cálido",
                "title": "Dos",
                "lyrics": "3 ContributorsDos Lyrics" + song(2, "summer") + "4Embed",
                "id": "2",
                "release_date": "2002",
            },
            # same lyrics as "Uno" but later: a duplicate, not a second kept track
            {
                "artist": "Señor Cálido",
                "title": "Uno (Deluxe)",
                "lyrics": song(1, "hustle"),
                "id": "3",
                "release_date": "2005-01-01",
            },
            {"artist": "Señor Cálido", "title": "Intro (Skit)", "lyrics": song(4, "x"), "id": "4"},
            {"artist": "Señor Cálido", "title": "Hidden", "lyrics": "", "id": "5"},
            {"artist": "Someone Else", "title": "Not mine", "lyrics": song(6, "y"), "id": "6"},
        ],
    )
    (corpus_dir / "b.csv").write_text(
        "artist,title,lyrics,release_date,source_id\n"
        f'Señor Cálido,Tres,"{song(7, "family")}",2009-09-09,7\n'
        "Señor Cálido,,no title,,8\n"
    )
    (corpus_dir / "c.jsonl").write_bytes(
        b'{"artist": "Se\xc3\xb1or C\xc3\xa1lido", "title": "Bad '
        b'bytes", "id": "9", "lyrics": "caf\xe9 '
        + song(9, "z").encode().replace(b"\n", b"\\n")
        + b'"}\nnot json\n'
    )

    first = materialize(database_url, instance, corpus_dir, slug)
    assert first.success
    rows = stored(database_url, slug)
    by_id = {r[0]: r for r in rows}
    assert {k: (v[2], v[3]) for k, v in by_id.items()} == {
        "1": ("kept", None),
        "2": ("kept", None),
        "3": ("rejected", "duplicate_lyrics"),
        "4": ("rejected", "skit"),
        "5": ("rejected", "empty"),
        "7": ("kept", None),
        "9": ("rejected", "undecodable"),
    }
    assert "Contributors" not in by_id["2"][4] and "Embed" not in by_id["2"][4]
    assert "[Chorus]" not in by_id["1"][4]

    metadata = first.asset_materializations_for_node("tracks")[0].metadata
    assert metadata["kept"].value == 3
    assert metadata["rejected_by_reason"].value == {
        "duplicate_lyrics": 1,
        "empty": 1,
        "skit": 1,
        "undecodable": 1,
    }
    assert metadata["invalid_records"].value == 2  # the untitled CSV row and "not json"
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {
        "tracks_have_no_duplicates": True,
        "tracks_have_no_page_residue": True,
        "tracks_rejected_share_below_threshold": False,  # 4 of 7 rejected: warns
    }

    second = materialize(database_url, instance, corpus_dir, slug)
    assert second.success
    assert stored(database_url, slug) == rows  # identical, updated_at included
    metadata = second.asset_materializations_for_node("tracks")[0].metadata
    assert metadata["rows_unchanged"].value == 7
    assert metadata["rows_updated"].value == metadata["rows_inserted"].value == 0


def test_changed_and_removed_tracks_are_updated_and_deleted(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    (slug,) = add_artists(database_url, instance, "MC Verity")
    records = [
        {"artist": "MC Verity", "title": f"T{i}", "lyrics": song(i, "grind"), "id": str(i)}
        for i in range(3)
    ]
    write_jsonl(corpus_dir / "a.jsonl", records)
    assert materialize(database_url, instance, corpus_dir, slug).success
    before = {r[0]: r for r in stored(database_url, slug)}

    records[0]["lyrics"] = song(0, "victory")
    write_jsonl(corpus_dir / "a.jsonl", records[:2])
    assert materialize(database_url, instance, corpus_dir, slug).success
    after = {r[0]: r for r in stored(database_url, slug)}
    assert set(after) == {"0", "1"}
    assert "victory" in after["0"][4] and after["0"][6] > before["0"][6]
    assert after["0"][8] == before["0"][8]  # same row id: downstream references survive
    assert after["1"] == before["1"]


def test_an_artist_without_tracks_materializes_empty(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    (slug,) = add_artists(database_url, instance, "Test Newcomer")
    write_jsonl(corpus_dir / "a.jsonl", [])
    result = materialize(database_url, instance, corpus_dir, slug)
    assert result.success
    assert result.asset_materializations_for_node("tracks")[0].metadata["kept"].value == 0
    assert stored(database_url, slug) == []


def test_artists_may_reuse_corpus_ids(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    slugs = add_artists(database_url, instance, "Alpha", "Beta")
    write_jsonl(
        corpus_dir / "a.jsonl",
        [
            {"artist": "Alpha", "title": "One", "lyrics": song(1, "alpha"), "id": "1"},
            {"artist": "Beta", "title": "One", "lyrics": song(2, "beta"), "id": "1"},
        ],
    )
    for slug in slugs:
        assert materialize(database_url, instance, corpus_dir, slug).success
    for slug in slugs:  # again: nothing moves between artists
        assert materialize(database_url, instance, corpus_dir, slug).success
        assert [row[2] for row in stored(database_url, slug)] == ["kept"]


def test_lyrics_kept_by_a_row_left_in_place_are_not_kept_twice(database_url: str):
    """A track whose fetch failed keeps its stored row; a listed copy of its lyrics (or one
    from another source) must become a duplicate, not break the partition's commit."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO artists (slug, display_name) VALUES ('a', 'A')")
        conn.commit()
        original = RawTrack("genius", "10", "Original", song(1, "x"))
        write_partition(conn, "a", "genius", prepare_rows("a", FetchResult([original])), [])
        reissue = RawTrack("genius", "11", "Reissue", song(1, "x"))
        failure = FetchFailure("genius", "10", "Original", "HTTP 404")
        write_partition(conn, "a", "genius", prepare_rows("a", FetchResult([reissue])), [failure])
        in_corpus = RawTrack("corpus", "11", "Reissue", song(1, "x"))
        write_partition(conn, "a", "corpus", prepare_rows("a", FetchResult([in_corpus])), [])
        statuses = conn.execute(
            "SELECT source, source_id, status, status_reason FROM tracks ORDER BY 1, 2"
        ).fetchall()
    assert statuses == [
        ("corpus", "11", "rejected", "duplicate_lyrics"),
        ("genius", "10", "kept", None),
        ("genius", "11", "rejected", "duplicate_lyrics"),
    ]


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    from rap_pipeline.core.resources import DatabaseResource
    from rap_pipeline.defs.tracks.assets import tracks
    from rap_pipeline.defs.tracks.resources import TrackSourceResource
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("artists", [sys.argv[3]])
        dg.materialize([tracks], partition_key=sys.argv[3], instance=instance, resources={
            "database": DatabaseResource(url=sys.argv[1]),
            "track_source": TrackSourceResource(kind="corpus", corpus_path=sys.argv[2])})
    """
)


def wait_inside_the_write(database_url: str, slug: str, writer_alive) -> None:
    """Returns 0.2 s into the partition's write transaction (its advisory lock, not another
    such as the migrations', is held from the start), well inside an upsert of thousands of
    rows."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while not conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND objid::bigint = hashtext('tracks:' || %s)::bigint & 4294967295",
            (slug,),
        ).fetchone()[0]:
            assert writer_alive(), "the write finished before the fault could hit it"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    time.sleep(0.2)


def test_a_run_killed_mid_partition_leaves_nothing_and_a_rerun_completes(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    (slug,) = add_artists(database_url, instance, "Big Tundra")
    count = 6000
    write_jsonl(
        corpus_dir / "big.jsonl",
        [
            {
                "artist": "Big Tundra",
                "title": f"T{i}",
                "lyrics": song(i, f"theme {i}"),
                "id": str(i),
            }
            for i in range(count)
        ],
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, database_url, str(corpus_dir), slug],
        env={**os.environ, "DAGSTER_HOME": ""},
    )
    try:
        wait_inside_the_write(database_url, slug, lambda: writer.poll() is None)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 0
    finally:
        if writer.poll() is None:
            writer.kill()

    assert materialize(database_url, instance, corpus_dir, slug).success
    assert len(stored(database_url, slug)) == count
