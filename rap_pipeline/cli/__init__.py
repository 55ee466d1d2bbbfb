"""The ``rap-pipeline`` command, assembled from one module per command group."""

from __future__ import annotations

import typer

from rap_pipeline.cli import (
    artists,
    backfill,
    benchmark,
    corpus,
    dagster,
    doctor,
    metrics,
    predict,
    run,
    search,
    serve,
    services,
)
from rap_pipeline.cli.output import USER_ERRORS, console

app = typer.Typer(
    help="Collect, clean, enrich and analyse rap lyrics.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command()(run.run)
app.command()(backfill.backfill)
app.command("search")(search.search_command)
app.command("similar")(search.similar_command)
app.command()(predict.predict)
app.command()(metrics.metrics)
app.command()(doctor.doctor)
app.command()(serve.serve)
app.command()(dagster.dev)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    dagster.dagster
)
app.add_typer(services.app, name="services")
app.add_typer(artists.app, name="artists")
app.add_typer(corpus.app, name="corpus")
app.add_typer(benchmark.app, name="benchmark")


def main() -> None:
    """The console script: errors that are the user's to fix end as one red line, not a
    traceback, whichever command raised them."""
    from rap_pipeline.defs.embeddings.model import ModelUnavailableError

    try:
        app()
    except (*USER_ERRORS, ModelUnavailableError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
