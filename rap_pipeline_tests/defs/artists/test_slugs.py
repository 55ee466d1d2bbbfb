import pytest
from hypothesis import given
from hypothesis import strategies as st

from rap_pipeline.defs.artists.slugs import is_valid_slug, slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Tyler, The Creator", "tyler-the-creator"),
        ("Beyoncé", "beyonce"),
        ("Señor Cálido", "senor-calido"),
        ("K.O. the Poet", "k-o-the-poet"),
        ("Young $avant", "young-savant"),
        ("Simon & Garfunkel", "simon-and-garfunkel"),
        ("  MC   Verity  ", "mc-verity"),
        ("N'Dea", "ndea"),
        ("ＡＢＣ", "abc"),
    ],
)
def test_slugify(name: str, slug: str):
    assert slugify(name) == slug


def test_names_without_latin_letters_get_a_stable_hashed_slug():
    assert slugify("방탄") == slugify("방탄")
    assert slugify("방탄").startswith("artist-")
    assert slugify("방탄") != slugify("소녀")


def test_empty_name_is_an_error():
    with pytest.raises(ValueError):
        slugify("  ")


@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_every_name_gives_a_valid_slug(name: str):
    assert is_valid_slug(slugify(name))
