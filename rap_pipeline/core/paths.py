"""Where the files that live at the top of the repository are found at run time."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
_SOURCE_ROOT = PACKAGE_DIR.parent
_BUNDLED = PACKAGE_DIR / "_bundled"  # copies that wheels carry (see pyproject.toml)


def project_file(name: str) -> Path:
    """``sql/``, ``dagster.yaml``, ``artists.yaml``: from the source checkout when running from
    one (editable install), else from the copies bundled in the wheel."""
    in_checkout = _SOURCE_ROOT / name
    return in_checkout if in_checkout.exists() else _BUNDLED / name


SAMPLE_CORPUS_DIR = PACKAGE_DIR / "samples" / "data" / "sample_corpus"
