"""``rap-pipeline predict``: score a track or new lyrics with the registered predictors, and
the predictors' part of the ``run`` summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings
from rap_pipeline.defs.predictors.evaluation import BASELINES
from rap_pipeline.defs.predictors.registry import RegistryError, latest_version, promoted_version
from rap_pipeline.defs.predictors.training import PREDICTORS


def predict(
    track: Annotated[
        str | None, typer.Argument(help="A track id, a title, or artist-slug/title.")
    ] = None,
    lyrics_file: Annotated[
        Path | None,
        typer.Option(help="Score these lyrics (a text file, or - for stdin) instead of a track."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict a track's Spotify popularity and LLM scores with the registered models (no LLM
    call), each with its version and its error on artists it never saw."""
    from rap_pipeline.predict import PredictionError, predict_lyrics, predict_track

    if (track is None) == (lyrics_file is None):
        raise fail("give a TRACK or --lyrics-file, not both or neither")
    settings = get_settings()
    try:
        lyrics = None
        if lyrics_file is not None:
            lyrics = (
                typer.get_text_stream("stdin").read()
                if str(lyrics_file) == "-"
                else (lyrics_file.read_text(encoding="utf-8"))
            )
        with services_for_command(settings) as urls:
            if lyrics is not None:
                subject = {"lyrics_file": str(lyrics_file)}
                predictions = predict_lyrics(
                    lyrics, settings=settings, database_url=urls.database_url
                )
            else:
                subject, predictions = predict_track(
                    track, settings=settings, database_url=urls.database_url
                )
    except (OSError, LookupError, PredictionError, RegistryError, ServiceError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        payload = {**subject, "predictions": [p.as_dict() for p in predictions]}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    console.print(", ".join(f"{k}: {v}" for k, v in subject.items()))
    table = Table(show_lines=True)
    for column in ("model", "prediction", "held-out MAE", "baselines' MAE", "status"):
        table.add_column(column, overflow="fold")
    for p in predictions:
        table.add_row(
            f"{p.model} v{p.version}",
            "\n".join(f"{label}: {value:.2f}" for label, value in p.values.items()),
            f"{p.held_out_mae:.3f}",
            "\n".join(f"{name}: {mae:.3f}" for name, mae in p.baseline_mae.items()),
            p.note if p.promoted else f"[yellow]{p.note}[/yellow]",
        )
    console.print(table)
    console.print("no LLM was called: the LLM scores are the distilled model's")


def print_predictors(conn) -> None:
    """Each predictor's latest version: held-out error beside the baselines', and whether it
    was promoted."""
    table = Table(title="predictors (held out by artist; MAE, 95% interval)")
    for column in ("predictor", "version", "tracks / artists", "model", *BASELINES, "promoted"):
        table.add_column(column, overflow="fold")
    rows = 0
    for spec in PREDICTORS:
        latest = latest_version(conn, spec.name)
        if latest is None:
            continue
        rows += 1
        scores = latest.metrics["scores"]

        def cell(name: str, scores=scores) -> str:
            mae = scores[name]["mae"]
            return f"{mae['value']:.2f} [{mae['low']:.2f}, {mae['high']:.2f}]"

        promoted = promoted_version(conn, spec.name)
        serving = f"no; serving v{promoted.version}" if promoted else "no; none is"
        table.add_row(
            spec.name,
            f"v{latest.version}",
            f"{latest.training['tracks']} / {latest.training['artists']}",
            cell("model"),
            *(cell(name) for name in BASELINES),
            "yes" if latest.promoted else serving,
        )
    if rows:
        console.print(table)
