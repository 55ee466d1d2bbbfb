from pathlib import Path

import pytest

from rap_pipeline.core.database import connect
from rap_pipeline.defs.artists.registry import (
    ArtistsFileError,
    ArtistSpec,
    SlugCollisionError,
    get_artist,
    read_artists_file,
    register_artists,
)


def test_artists_file_accepts_names_and_maps(tmp_path: Path):
    path = tmp_path / "artists.yaml"
    path.write_text("artists:\n  - Beyoncé\n  - name: Tyler, The Creator\n    slug: tyler\n")
    assert [(s.name, s.slug) for s in read_artists_file(path)] == [
        ("Beyoncé", "beyonce"),
        ("Tyler, The Creator", "tyler"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("artists: MC Verity", "top-level 'artists:' list"),
        ("artists:\n  - name: X\n    slug: Not A Slug\n", "lowercase ASCII"),
        ("artists:\n  - name: X\n    colour: red\n", "colour"),
        ("artists: [", "not valid YAML"),
        ("artists:\n  - Tyler, The Creator\n  - Tyler The Creator\n", "explicit slug"),
    ],
)
def test_bad_artists_files_say_what_is_wrong(tmp_path: Path, content: str, message: str):
    path = tmp_path / "artists.yaml"
    path.write_text(content)
    with pytest.raises((ArtistsFileError, SlugCollisionError), match=message):
        read_artists_file(path)


def test_collision_with_a_stored_artist_is_detected_not_merged(database_url: str):
    with connect(database_url) as conn:
        assert register_artists(conn, [ArtistSpec(name="Tyler, The Creator")]) == [
            "tyler-the-creator"
        ]
        assert register_artists(conn, [ArtistSpec(name="Tyler, The Creator")]) == []
        with pytest.raises(SlugCollisionError, match="explicit slug"):
            register_artists(conn, [ArtistSpec(name="Tyler The Creator"), ArtistSpec(name="Other")])
        # nothing of the failed batch was written
        names = [r[0] for r in conn.execute("SELECT display_name FROM artists ORDER BY 1")]
        assert names == ["Tyler, The Creator"]
        assert get_artist(conn, "tyler-the-creator").name == "Tyler, The Creator"
        with pytest.raises(LookupError, match="artists add"):
            get_artist(conn, "nobody")
