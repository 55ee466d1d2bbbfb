"""The artists the pipeline collects: the artists file, and the ``artists`` table that holds
each partition key's display name."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rap_pipeline.defs.artists.slugs import is_valid_slug, slugify


class ArtistSpec(BaseModel):
    """One artist: a display name, optionally an explicit partition key and source ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    slug: str = ""
    genius_artist_id: int | None = None

    @model_validator(mode="after")
    def _slug(self) -> ArtistSpec:
        if not self.slug:
            object.__setattr__(self, "slug", slugify(self.name))
        elif not is_valid_slug(self.slug):
            raise ValueError(
                f"slug {self.slug!r} for {self.name!r} must be lowercase ASCII words "
                "joined by hyphens, e.g. 'tyler-the-creator'"
            )
        return self


class SlugCollisionError(ValueError):
    """Two different artist names map to the same partition key."""


class ArtistsFileError(ValueError):
    pass


def read_artists_file(path: Path) -> list[ArtistSpec]:
    """Parses an artists file: ``artists:`` followed by names or ``{name, slug, ...}`` maps."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ArtistsFileError(f"artists file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ArtistsFileError(f"artists file {path} is not valid YAML: {exc}") from exc
    entries = document.get("artists") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ArtistsFileError(f"artists file {path} must have a top-level 'artists:' list")
    specs = []
    for index, entry in enumerate(entries, start=1):
        try:
            specs.append(ArtistSpec(name=entry) if isinstance(entry, str) else ArtistSpec(**entry))
        except (ValidationError, TypeError) as exc:
            raise ArtistsFileError(f"{path}, artist #{index} ({entry!r}): {exc}") from exc
    check_collisions(specs)
    return specs


def check_collisions(specs: list[ArtistSpec]) -> None:
    names_by_slug: dict[str, str] = {}
    for spec in specs:
        other = names_by_slug.setdefault(spec.slug, spec.name)
        if other != spec.name:
            raise SlugCollisionError(
                f"{other!r} and {spec.name!r} both become the partition key {spec.slug!r}; "
                "give one of them an explicit slug"
            )


def register_artists(conn: psycopg.Connection, specs: list[ArtistSpec]) -> list[str]:
    """Inserts artists not known yet; returns their slugs. Raises SlugCollisionError when a
    slug is already taken by a different name (nothing is written then)."""
    check_collisions(specs)
    new_slugs = []
    with conn.transaction():
        for spec in specs:
            inserted = conn.execute(
                "INSERT INTO artists (slug, display_name, genius_artist_id) VALUES (%s, %s, %s) "
                "ON CONFLICT (slug) DO NOTHING RETURNING slug",
                (spec.slug, spec.name, spec.genius_artist_id),
            ).fetchone()
            if inserted is not None:
                new_slugs.append(spec.slug)
                continue
            row = conn.execute(
                "SELECT display_name FROM artists WHERE slug = %s", (spec.slug,)
            ).fetchone()
            if row[0] != spec.name:
                raise SlugCollisionError(
                    f"{spec.name!r} becomes the partition key {spec.slug!r}, which already "
                    f"belongs to {row[0]!r}; give it an explicit slug"
                )
            elif spec.genius_artist_id is not None:
                conn.execute(
                    "UPDATE artists SET genius_artist_id = %s, updated_at = now() "
                    "WHERE slug = %s AND genius_artist_id IS DISTINCT FROM %s",
                    (spec.genius_artist_id, spec.slug, spec.genius_artist_id),
                )
    return new_slugs


def get_artist(conn: psycopg.Connection, slug: str) -> ArtistSpec:
    row = conn.execute(
        "SELECT display_name, genius_artist_id FROM artists WHERE slug = %s", (slug,)
    ).fetchone()
    if row is None:
        raise LookupError(
            f"artist partition {slug!r} is not in the artists table; add it with "
            "`rap-pipeline artists add` or the artists file"
        )
    return ArtistSpec(name=row[0], slug=slug, genius_artist_id=row[1])
