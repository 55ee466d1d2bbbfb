from pathlib import Path

import psycopg
import pytest

from rap_pipeline.core.database import (
    MigrationError,
    apply_migrations,
    describe_url,
    refresh_stale_statistics,
)


def test_migrations_are_recorded_and_idempotent(database_url: str):
    with psycopg.connect(database_url) as conn:
        assert apply_migrations(conn) == []  # the fixture's connection migrated already
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions[0] == 1
        assert conn.execute("SELECT to_regclass('tracks')").fetchone()[0] == "tracks"


def test_an_edited_migration_is_refused(database_url: str, tmp_path: Path):
    (tmp_path / "001_init.sql").write_text("SELECT 1;")
    with psycopg.connect(database_url) as conn, pytest.raises(MigrationError, match="never edited"):
        apply_migrations(conn, tmp_path)


def test_duplicate_source_ids_and_kept_lyrics_are_impossible(database_url: str):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO artists (slug, display_name) VALUES ('a', 'A')")
        insert = (
            "INSERT INTO tracks (artist_slug, source, source_id, title, lyrics_clean, "
            "lyrics_hash, status) VALUES ('a', 'corpus', %s, 't', 'x', %s, 'kept')"
        )
        conn.execute(insert, ("1", "h1"))
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(insert, ("1", "h2"))
        # deferred: raised when the transaction commits
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(insert, ("2", "h1"))


def test_tables_filled_since_their_last_analyze_are_analyzed_once(database_url: str):
    def reltuples(conn: psycopg.Connection) -> float:
        query = "SELECT reltuples FROM pg_class WHERE relname = 'artists'"
        return conn.execute(query).fetchone()[0]

    with psycopg.connect(database_url, autocommit=True) as conn:
        # autovacuum's own ANALYZE would otherwise race the one under test
        conn.execute("ALTER TABLE artists SET (autovacuum_enabled = off)")
        conn.execute(
            "INSERT INTO artists (slug, display_name) "
            "SELECT 'a' || i, 'A' || i FROM generate_series(1, 600) AS i"
        )
        conn.execute("SELECT pg_stat_force_next_flush()")  # counters reach pg_stat at once
        assert reltuples(conn) < 0  # never analyzed: the planner guesses
        assert refresh_stale_statistics(conn) == ["artists"]
        assert reltuples(conn) == 600
        assert refresh_stale_statistics(conn) == []  # nothing changed since


def test_urls_are_described_without_credentials():
    assert describe_url("postgresql://user:s3cret@db.example:6543/rap") == "db.example:6543/rap"
