import psycopg

from rap_pipeline.core.database import connect
from rap_pipeline.defs.embeddings.store import hnsw_search


def _settings(conn: psycopg.Connection) -> tuple[str, str]:
    return conn.execute(
        "SELECT current_setting('hnsw.ef_search', true), "
        "current_setting('hnsw.iterative_scan', true)"
    ).fetchone()


def test_hnsw_search_sets_a_pooled_sessions_values_once_and_a_transactions_locally(
    database_url: str,
):
    with connect(database_url) as conn:
        conn.execute("SELECT NULL::vector")  # loads pgvector, whose settings these are
        conn.commit()
        with hnsw_search(conn, 40, iterative=True):
            assert conn.autocommit  # one statement, no BEGIN/COMMIT round trips
            assert _settings(conn) == ("40", "relaxed_order")
        assert not conn.autocommit
        # the session keeps them, so the next search on this connection sends nothing more
        with hnsw_search(conn, 40, iterative=True):
            assert _settings(conn) == ("40", "relaxed_order")
        # inside a transaction: that transaction's settings only
        with conn.transaction(), hnsw_search(conn, 200):
            assert _settings(conn) == ("200", "off")
        assert _settings(conn) == ("40", "relaxed_order")
        conn.commit()
        with hnsw_search(conn, 100):  # other values: sent again
            assert _settings(conn) == ("100", "off")
