"""Search quality on the labelled queries over the sample corpus (precision@k)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from rap_pipeline.core.paths import PACKAGE_DIR
from rap_pipeline.search import search

QUERIES_FILE = PACKAGE_DIR / "data" / "search_queries.yaml"


@dataclass(frozen=True)
class QueryResult:
    query: str
    relevant: int
    found: list[str]  # artist-slug/title of the top k, best first
    hits: int  # how many of the top k are relevant

    def precision(self, k: int) -> float:
        """Relevant share of the top k; with fewer than k relevant tracks, of that many."""
        return self.hits / min(k, self.relevant)


def load_queries(path: Path = QUERIES_FILE) -> list[tuple[str, set[str]]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(item["query"], set(item["relevant"])) for item in document["queries"]]


def evaluate(
    database_url: str, k: int = 5, hybrid: bool = False, model_id: str | None = None
) -> list[QueryResult]:
    results = []
    extra = {"model_id": model_id} if model_id else {}
    for query, relevant in load_queries():
        hits = search(query, limit=k, hybrid=hybrid, database_url=database_url, **extra)
        found = [f"{hit.artist_slug}/{hit.title}" for hit in hits]
        results.append(QueryResult(query, len(relevant), found, sum(f in relevant for f in found)))
    return results


def mean_precision(results: list[QueryResult], k: int = 5) -> float:
    return sum(r.precision(k) for r in results) / len(results)
