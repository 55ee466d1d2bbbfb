"""The web page: server-rendered (Jinja2, escaping everything), light JavaScript, assets served
by the app (no CDN). The reader's view; the Dagster UI stays the operator's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from rap_pipeline.api import reads
from rap_pipeline.core.database import connect
from rap_pipeline.core.settings import Settings

HERE = Path(__file__).parent
HEADLINES = (
    "rule_based.rhyme_density",
    "rule_based.mtld",
    "rule_based.sentiment_mean",
    "emotion.emotion_joy",
    "emotion.emotion_sadness",
    "emotion.emotion_anger",
)


def highlight(text: str, query: str) -> Markup:
    """``text`` escaped, with the query's words (3 letters or more) marked."""
    words = sorted({w for w in re.findall(r"\w{3,}", query.lower())}, key=len, reverse=True)
    escaped = str(escape(text))
    if not words:
        return Markup(escaped)
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
    return Markup(pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", escaped))


def numbers(result: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The numeric metrics of an analysis, formatted for a table."""
    rows = []
    for key, value in sorted((result or {}).items()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        rows.append((key, f"{value:.3f}" if isinstance(value, float) else str(value)))
    return rows


def add_pages(app: FastAPI, settings: Settings, database_url: str, api) -> None:
    """``api``: the JSON routes' functions (the pages show what the API answers)."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )
    environment.globals.update(highlight=highlight, numbers=numbers)
    templates = Jinja2Templates(env=environment)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def artist_choices() -> list[dict]:
        with connect(database_url) as conn:
            rows, _ = reads.artists(conn, 1000, 0)
        return rows

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(
        request: Request,
        q: Annotated[str, Query(max_length=500)] = "",
        artist: Annotated[str, Query(max_length=100)] = "",
        year_from: Annotated[str, Query(max_length=4)] = "",
        year_to: Annotated[str, Query(max_length=4)] = "",
        hybrid: bool = False,
    ):
        context = {
            "q": q,
            "artist": artist,
            "year_from": year_from,
            "year_to": year_to,
            "hybrid": hybrid,
            "artists": artist_choices(),
            "results": [],
            "error": None,
        }
        years = {}
        for name, value in (("year_from", year_from), ("year_to", year_to)):
            if value and not value.isdigit():
                context["error"] = f"{name.replace('_', ' ')} must be a year"
            elif value:
                years[name] = int(value)
        if q.strip() and not context["error"]:
            found = api["search"](q=q, artist=artist or None, limit=10, hybrid=hybrid, **years)
            context["results"] = found.results
        return templates.TemplateResponse(request, "search.html", context)

    @app.get("/track/{track_id}", response_class=HTMLResponse, include_in_schema=False)
    def track_page(request: Request, track_id: int):
        track = api["track"](track_id)
        try:
            similar = api["similar"](track_id, limit=5)
        except HTTPException:  # no vector yet: the page says there is none
            similar = []
        return templates.TemplateResponse(
            request, "track.html", {"track": track, "similar": similar}
        )

    @app.get("/artist/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def artist_page(request: Request, slug: str):
        artist = api["artist"](slug)
        try:
            plots = api["trends"]()["plots"]
        except Exception:  # noqa: BLE001 - no trends yet: the page says so
            plots = {}
        return templates.TemplateResponse(
            request, "artist.html", {"artist": artist, "plots": plots, "headlines": HEADLINES}
        )

    @app.get("/browse", response_class=HTMLResponse, include_in_schema=False)
    def artists_page(request: Request):
        return templates.TemplateResponse(request, "artists.html", {"artists": artist_choices()})
