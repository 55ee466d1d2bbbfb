"""The HTTP API (``rap-pipeline serve``): what the pipeline built, as JSON, read-only.

The lifespan opens what the pipeline itself uses (the PostgreSQL pool, Redis, the embedding
model) once and closes it. Every error answers ``{"error": {"code", "message"}}`` without a
stack trace; requests are rate limited per client through Redis (shared by every worker);
``/metrics`` has the service's own Prometheus metrics (route templates as labels)."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from markupsafe import escape
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rap_pipeline.api import reads
from rap_pipeline.api.guard import RequestGuard, error_response
from rap_pipeline.core.database import close_pool, connect, load_migrations
from rap_pipeline.core.settings import Settings
from rap_pipeline.search import SearchHit

log = logging.getLogger(__name__)
MAX_LYRICS_CHARS = 20_000  # what the pipeline keeps of a song (cleaning's limit)


class ApiError(HTTPException):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(
            status_code=status, detail={"code": code, "message": message}, headers=headers
        )


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class SearchOut(BaseModel):
    query: str
    hybrid: bool
    results: list[SearchHit]


class AnalyzeIn(BaseModel):
    lyrics: str = Field(min_length=1, max_length=MAX_LYRICS_CHARS)


class PredictionOut(BaseModel):
    model: str
    version: int
    promoted: bool
    target: str
    values: dict[str, float]
    held_out_mae: float
    baseline_mae: dict[str, float]
    note: str


class AnalyzeOut(BaseModel):
    rule_based: dict[str, Any]
    emotion: dict[str, Any]
    emotion_method: str
    predictions: list[PredictionOut]
    llm_called: bool = False
    written: bool = False


class ArtistSummary(BaseModel):
    slug: str
    name: str
    tracks: int
    first_year: int | None
    last_year: int | None


class ArtistsOut(BaseModel):
    page: Page
    artists: list[ArtistSummary]


class TrackRef(BaseModel):
    id: int
    title: str
    release_year: int | None


class ArtistOut(ArtistSummary):
    rejected: int
    spotify_matched: int
    means: dict[str, float] = Field(description="mean of each analysis metric, analyzer.metric")
    tracks_list: list[TrackRef]


class SpotifyOut(BaseModel):
    status: str
    spotify_track_id: str | None
    spotify_title: str | None
    album: str | None
    release_date: str | None
    popularity: int | None
    explicit: bool | None
    duration_ms: int | None
    enriched_at: dt.datetime | None
    match_score: float | None


class AnalysisOut(BaseModel):
    analyzer: str
    analyzer_version: str
    method: str
    result: dict[str, Any]
    analyzed_at: dt.datetime


class TrackOut(BaseModel):
    id: int
    title: str
    artist_slug: str
    artist: str
    album: str | None
    release_date: dt.date | None
    release_year: int | None
    url: str | None
    word_count: int | None
    line_count: int | None
    lyrics_excerpt: str = Field(description="at most 4 lines / 300 characters of the lyrics")
    spotify: SpotifyOut | None
    analyses: list[AnalysisOut]
    predictions: list[PredictionOut]
    predictions_note: str | None = None


def create_app(settings: Settings, database_url: str, redis_url: str) -> FastAPI:
    registry = CollectorRegistry(auto_describe=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from rap_pipeline.defs.embeddings.model import load_model

        with connect(database_url):  # opens the pool, migrates if needed
            pass
        app.state.redis = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=1, socket_timeout=1
        )
        app.state.model = await run_in_threadpool(
            load_model, settings.embedding_model, settings.torch_threads or None
        )
        yield
        await app.state.redis.aclose()
        close_pool(database_url)

    app = FastAPI(
        title="rap_pipeline",
        version="1",
        summary="Search and read what the pipeline built: tracks, analyses, predictions, trends.",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )
    app.add_middleware(
        RequestGuard,
        state=app.state,
        requests_per_minute=settings.api_requests_per_minute,
        registry=registry,
    )

    # -- errors: one shape, never a stack trace --------------------------------------------
    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and the router's own 404/405
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = (
            exc.detail
            if isinstance(exc.detail, dict)
            else {"code": f"http_{exc.status_code}", "message": str(exc.detail)}
        )
        if "text/html" in request.headers.get("accept", ""):  # a person, in a browser
            page = (
                f"<!doctype html><html lang=en><meta charset=utf-8><title>{exc.status_code}</title>"
                f"<link rel=stylesheet href=/static/style.css><main><h1>{exc.status_code}</h1>"
                f"<p>{escape(detail['message'])}</p><p><a href=/>Search</a></p></main></html>"
            )
            return HTMLResponse(page, status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(problems))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", "the server failed; see its log")

    # -- routes ------------------------------------------------------------------------------
    @app.get("/health", summary="Each part the API needs; 503 naming what failed")
    async def health() -> JSONResponse:
        parts = await run_in_threadpool(_database_parts, database_url)
        try:
            await app.state.redis.ping()
            parts["redis"] = "ok"
        except (aioredis.RedisError, OSError) as exc:
            parts["redis"] = f"unreachable ({type(exc).__name__})"
        parts["model"] = f"ok ({app.state.model.model_id})"
        healthy = all(value.startswith("ok") for value in parts.values())
        return JSONResponse(
            {"status": "ok" if healthy else "failing", "parts": parts},
            status_code=200 if healthy else 503,
        )

    @app.get("/search", response_model=SearchOut, summary="Semantic search over the lyrics")
    def search_route(
        q: Annotated[
            str, Query(min_length=1, max_length=500, description="what the songs are about")
        ],
        artist: Annotated[str | None, Query(max_length=100)] = None,
        year_from: Annotated[int | None, Query(ge=1900, le=2100)] = None,
        year_to: Annotated[int | None, Query(ge=1900, le=2100)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        hybrid: bool = False,
    ) -> SearchOut:
        from rap_pipeline.search import search

        if not q.strip():
            raise ApiError(422, "invalid_request", "q: the search text is empty")
        hits = search(
            q,
            artist=artist,
            year_from=year_from,
            year_to=year_to,
            limit=limit,
            hybrid=hybrid,
            model_id=settings.embedding_model,
            database_url=database_url,
        )
        return SearchOut(query=q, hybrid=hybrid, results=hits)

    @app.get(
        "/tracks/{track_id}",
        response_model=TrackOut,
        summary="A track, its Spotify data, analyses and predictions",
    )
    def track_route(track_id: int) -> dict[str, Any]:
        from rap_pipeline.predict import PredictionError, predict_track

        with connect(database_url) as conn:
            found = reads.track(conn, track_id)
        if found is None:
            raise ApiError(404, "not_found", f"no kept track {track_id}")
        try:
            _, predictions = predict_track(
                str(track_id), settings=settings, database_url=database_url
            )
            found["predictions"] = [p.as_dict() for p in predictions]
        except (PredictionError, LookupError) as exc:
            found["predictions"] = []
            found["predictions_note"] = str(exc)
        return found

    @app.get("/tracks/{track_id}/similar", response_model=list[SearchHit])
    def similar_route(track_id: int, limit: Annotated[int, Query(ge=1, le=50)] = 10):
        from rap_pipeline.search import similar

        try:
            hits = similar(
                str(track_id),
                limit=limit,
                model_id=settings.embedding_model,
                database_url=database_url,
            )
        except LookupError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return hits

    @app.get("/artists", response_model=ArtistsOut)
    def artists_route(
        limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: Annotated[int, Query(ge=0)] = 0
    ) -> ArtistsOut:
        with connect(database_url) as conn:
            rows, total = reads.artists(conn, limit, offset)
        return ArtistsOut(page=Page(total=total, limit=limit, offset=offset), artists=rows)

    @app.get("/artists/{slug}", response_model=ArtistOut)
    def artist_route(slug: Annotated[str, PathParam(max_length=100)]) -> dict[str, Any]:
        with connect(database_url) as conn:
            found = reads.artist(conn, slug)
        if found is None:
            raise ApiError(404, "not_found", f"no artist {slug!r}")
        return found

    @app.post("/analyze", response_model=AnalyzeOut, summary="Analyze lyrics; nothing is stored")
    def analyze_route(body: AnalyzeIn) -> AnalyzeOut:
        from rap_pipeline.predict import PredictionError, lyrics_features, predict_features

        try:
            table = lyrics_features(body.lyrics, settings)
        except PredictionError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        values = table.frame.iloc[0].to_dict()
        try:
            predictions = predict_features(table, settings, database_url)
        except PredictionError:
            predictions = []
        return AnalyzeOut(
            rule_based=_prefixed(values, "rule_based_analysis:"),
            emotion=_prefixed(values, "emotion_analysis:"),
            emotion_method=table.sources.get("emotion", ""),
            predictions=[PredictionOut(**p.as_dict()) for p in predictions],
        )

    @app.get("/trends", summary="The trends asset's tables, and its plots' URLs")
    def trends_route() -> dict[str, Any]:
        from rap_pipeline.defs.predictors.store import latest_trend_report

        with connect(database_url) as conn:
            report = latest_trend_report(conn)
        if report is None:
            raise ApiError(404, "not_found", "no trends yet: materialize the trends asset")
        return {
            "created_at": report.created_at,
            "tables": report.tables,
            "plots": {name: f"/trends/plots/{name}.png" for name in report.plots},
        }

    @app.get("/trends/plots/{name}.png", response_class=FileResponse)
    def plot_route(name: str) -> FileResponse:
        from rap_pipeline.defs.predictors.store import latest_trend_report
        from rap_pipeline.predict import artifacts_dir

        with connect(database_url) as conn:
            report = latest_trend_report(conn)
        relative = report.plots.get(name) if report else None
        if relative is None:  # names come from the report, never from the path
            raise ApiError(404, "not_found", f"no plot {name!r}")
        return FileResponse(Path(artifacts_dir(settings)) / relative, media_type="image/png")

    @app.get("/metrics", include_in_schema=False)
    def metrics_route() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    from rap_pipeline.api.pages import add_pages

    add_pages(
        app,
        settings,
        database_url,
        {
            "search": search_route,
            "track": track_route,
            "similar": similar_route,
            "artist": artist_route,
            "trends": trends_route,
        },
    )
    return app


def _prefixed(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {
        key.removeprefix(prefix): value
        for key, value in values.items()
        if key.startswith(prefix) and not (isinstance(value, float) and math.isnan(value))
    }


def _database_parts(database_url: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    try:
        with connect(database_url) as conn:
            conn.execute("SELECT 1")
            parts["database"] = "ok"
            vector = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
            parts["pgvector"] = f"ok ({vector[0]})" if vector else "missing"
            applied = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
            shipped = len(load_migrations())
            parts["migrations"] = "ok" if applied == shipped else f"{applied} of {shipped}"
    except Exception as exc:  # noqa: BLE001 - reported as the failed part
        parts.setdefault("database", f"unreachable ({type(exc).__name__})")
    return parts
