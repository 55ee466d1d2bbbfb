"""The trends report in PostgreSQL (table ``trend_reports``); its plots are files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class StoredTrendReport:
    id: int
    data_hash: str
    tables: dict[str, list[dict]]
    plots: dict[str, str]  # name -> path relative to the artifacts directory
    created_at: dt.datetime


def write_trend_report(
    conn: psycopg.Connection, data_hash: str, tables: dict, plots: dict[str, str]
) -> StoredTrendReport:
    with conn.cursor(row_factory=class_row(StoredTrendReport)) as cur:
        return cur.execute(
            """INSERT INTO trend_reports (data_hash, tables, plots) VALUES (%s, %s, %s)
               RETURNING id, data_hash, tables, plots, created_at""",
            (data_hash, Jsonb(tables), Jsonb(plots)),
        ).fetchone()


def latest_trend_report(conn: psycopg.Connection) -> StoredTrendReport | None:
    with conn.cursor(row_factory=class_row(StoredTrendReport)) as cur:
        return cur.execute(
            "SELECT id, data_hash, tables, plots, created_at FROM trend_reports "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()


def release_years(conn: psycopg.Connection) -> list[int]:
    """Release years of the kept tracks, as the database has them."""
    rows = conn.execute(
        "SELECT DISTINCT release_year FROM tracks "
        "WHERE status = 'kept' AND release_year IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [year for (year,) in rows]
