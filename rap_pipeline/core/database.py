"""PostgreSQL access: one connection pool per URL and process, numbered SQL migrations."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from rap_pipeline.core.paths import project_file

log = logging.getLogger(__name__)

_pools: dict[str, ConnectionPool] = {}
_migrated: set[str] = set()
_lock = threading.Lock()
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any fixed number: serialises migrations between processes starting at the same time.
_MIGRATION_LOCK_ID = 7_341_002


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or project_file("sql")
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migrations are named NNN_lowercase_name.sql")
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}")
    return migrations


def apply_migrations(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Applies the migrations not applied yet, in one transaction; returns their names.

    Refuses to run when an applied migration's file has changed since: migrations are never
    edited once landed; add a new one instead.
    """
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            version: (name, checksum)
            for version, name, checksum in conn.execute(
                "SELECT version, name, checksum FROM schema_migrations"
            )
        }
        for migration in load_migrations(directory):
            if migration.version in applied:
                name, checksum = applied[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} changed after it was applied (as {name}). "
                        "Migrations are never edited once landed: add a new numbered file."
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration.name)
            log.info("applied migration %s", migration.name)
    return applied_now


def get_pool(url: str) -> ConnectionPool:
    """The process's pool for ``url``, with the schema migrated on first use."""
    with _lock:
        pool = _pools.get(url)
        if pool is None:
            try:
                conninfo_to_dict(url)
            except psycopg.ProgrammingError:
                # the parser's message quotes the URL, password included: say it without it
                raise ConnectionError(
                    "RAP_DATABASE_URL is not a valid PostgreSQL URL (percent-encode special "
                    "characters such as % @ / in the password)"
                ) from None
            # check: a connection is tested when handed out, so after a server restart the
            # pool replaces its dead connections instead of failing the next step with one
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=8,
                open=True,
                name="rap_pipeline",
                check=ConnectionPool.check_connection,
            )
            try:
                pool.wait(timeout=15)
            except PoolTimeout as exc:
                pool.close()
                raise ConnectionError(
                    f"Cannot connect to PostgreSQL at {describe_url(url)}. Check that the server "
                    "is running and RAP_DATABASE_URL is right (unset it to use the embedded one)."
                ) from exc
            _pools[url] = pool
        if url not in _migrated:
            with pool.connection() as conn:
                apply_migrations(conn)
            _migrated.add(url)
    return pool


def describe_url(url: str) -> str:
    """host:port/dbname of a connection URL, without user or password (safe for logs)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<an unparsable database URL>"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection]:
    """A pooled connection; commits when the block ends without error, else rolls back."""
    with get_pool(url).connection() as conn:
        yield conn


def close_pool(url: str) -> None:
    with _lock:
        pool = _pools.pop(url, None)
        _migrated.discard(url)
    if pool is not None:
        pool.close()


def close_pools() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
        _migrated.clear()


# a table's planner statistics are refreshed once its row count moved this many rows from
# what its last ANALYZE counted, and more than this share
STALE_STATISTICS_ROWS = 500
STALE_STATISTICS_SHARE = 0.2


def refresh_stale_statistics(conn: psycopg.Connection) -> list[str]:
    """ANALYZE the pipeline's tables whose row count moved away from what the planner knows;
    returns them. A first backfill fills tables within seconds, before autovacuum's next look
    (a minute by default): a never-analyzed ``analyses`` made the planner join a run's tracks
    to all of an analyzer's rows row by row (seconds a query instead of milliseconds). The
    planner needs row counts and the statistics of the columns its B-tree indexes cover: only
    those are analyzed (the lyrics columns would make each ANALYZE of ``tracks`` far slower);
    autovacuum does the rest. A table busy with other maintenance (autovacuum, an
    index build) is skipped, not waited for."""
    with conn.transaction():  # ANALYZE's lock is held until the transaction ends
        stale = conn.execute(
            """SELECT s.relname, array_agg(DISTINCT a.attname ORDER BY a.attname)
               FROM pg_stat_user_tables s
               JOIN pg_class c ON c.oid = s.relid
               JOIN pg_index i ON i.indrelid = s.relid
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
               JOIN pg_attribute a ON a.attrelid = s.relid AND a.attnum = ANY(i.indkey)
               WHERE s.schemaname = current_schema()
                 AND abs(s.n_live_tup - greatest(c.reltuples, 0)) >= %s
                 AND abs(s.n_live_tup - greatest(c.reltuples, 0))
                     > %s * greatest(c.reltuples, 0)
               GROUP BY s.relname ORDER BY s.relname""",
            (STALE_STATISTICS_ROWS, STALE_STATISTICS_SHARE),
        ).fetchall()
        for table, columns in stale:
            conn.execute(
                sql.SQL("ANALYZE (SKIP_LOCKED) {} ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
            )
    return [table for table, _ in stale]
