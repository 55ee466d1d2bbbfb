"""``rap-pipeline search`` and ``rap-pipeline similar``: semantic search from the terminal."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings


def _print_hits(hits: list, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps([hit.as_dict() for hit in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        console.print("no results")
        return
    table = Table(title=title, show_lines=True)
    for column in ("#", "score", "artist", "title", "year", "lines that matched"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        lines = "\n".join(hit.matched_lines.splitlines()[:4])
        table.add_row(
            str(rank), f"{hit.score:.4f}", hit.artist, hit.title, str(hit.year or ""), lines
        )
    console.print(table)


def search_command(
    text: Annotated[str, typer.Argument(help="What the songs are about, in plain words.")],
    artist: Annotated[str | None, typer.Option(help="Only this artist (partition key).")] = None,
    year_from: Annotated[int | None, typer.Option(help="Released in or after this year.")] = None,
    year_to: Annotated[int | None, typer.Option(help="Released in or before this year.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Number of results.")] = 10,
    hybrid: Annotated[
        bool, typer.Option(help="Fuse with full-text search (reciprocal rank fusion).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Semantic search over the lyrics: tracks ranked by their best-matching lines."""
    from rap_pipeline.search import search

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            hits = search(
                text,
                artist=artist,
                year_from=year_from,
                year_to=year_to,
                limit=limit,
                hybrid=hybrid,
                model_id=settings.embedding_model,
                database_url=urls.database_url,
            )
    except (ValueError, ServiceError, ConnectionError) as exc:
        raise fail(str(exc)) from None
    _print_hits(hits, as_json, f"search: {text}")


def similar_command(
    track: Annotated[str, typer.Argument(help="A track id, a title, or artist-slug/title.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Number of results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tracks whose lyrics are closest to a given track's, from any artist."""
    from rap_pipeline.search import similar

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            hits = similar(
                track,
                limit=limit,
                model_id=settings.embedding_model,
                database_url=urls.database_url,
            )
    except (LookupError, ServiceError, ConnectionError) as exc:
        raise fail(str(exc)) from None
    _print_hits(hits, as_json, f"similar to: {track}")
