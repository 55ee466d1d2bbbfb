"""How every command speaks: one console, errors that are the user's to fix as one red line."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from rap_pipeline.core.database import MigrationError
from rap_pipeline.core.services import ServiceError
from rap_pipeline.defs.artists.registry import ArtistsFileError, SlugCollisionError

console = Console()

# errors that are the user's to fix: printed as one clear line, no traceback
USER_ERRORS = (ArtistsFileError, SlugCollisionError, ServiceError, ConnectionError, MigrationError)


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def print_measures(title: str, rows: list[tuple[str, str, str]], started: float) -> None:
    """A benchmark's table of (measure, value, rate / goal) and how long it took."""
    table = Table(title=title)
    for column in ("measure", "value", "rate / goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"took {time.monotonic() - started:.0f} s")
