"""``rap-pipeline corpus``: corpus files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rap_pipeline.cli.output import console

app = typer.Typer(help="Corpus files.", no_args_is_help=True)


@app.command("generate")
def corpus_generate(
    out: Annotated[Path, typer.Argument(help="Folder for the JSONL files and artists.yaml.")],
    artists: Annotated[int, typer.Option(help="Number of artists.")] = 1000,
    tracks: Annotated[int, typer.Option(help="Number of tracks.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Same seed, same corpus.")] = 7,
) -> None:
    """Scale the sample corpus up for benchmarks; use it with RAP_CORPUS_PATH=OUT and
    RAP_ARTISTS_FILE=OUT/artists.yaml."""
    import yaml

    from rap_pipeline.samples.corpus_generator import artist_names, write_corpus

    counts = write_corpus(out, artists, tracks, seed)
    names = artist_names(artists)
    (out / "artists.yaml").write_text(
        yaml.safe_dump({"artists": names[: len(counts)]}, allow_unicode=True)
    )
    console.print(f"{sum(counts.values())} tracks over {len(counts)} artists in {out}")
