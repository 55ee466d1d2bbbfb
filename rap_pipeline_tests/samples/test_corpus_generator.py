import json
from pathlib import Path

from rap_pipeline.defs.artists.registry import ArtistSpec
from rap_pipeline.defs.artists.slugs import slugify
from rap_pipeline.defs.tracks.corpus import CorpusSource
from rap_pipeline.defs.tracks.sources import FetchResult
from rap_pipeline.defs.tracks.store import prepare_rows
from rap_pipeline.samples.corpus_generator import generate, write_corpus


def test_generated_corpus_is_deterministic_spread_and_mostly_kept(tmp_path: Path):
    records = list(generate(artists=7, tracks=300, seed=3))
    assert records == list(generate(artists=7, tracks=300, seed=3))
    assert records != list(generate(artists=7, tracks=300, seed=4))
    assert len({r["artist"] for r in records}) == 7
    assert len({r["source_id"] for r in records}) == 300
    years = [int(r["release_date"][:4]) for r in records]
    assert min(years) < 1995 and max(years) > 2020
    noisy = sum("Contributors" in r["lyrics"] for r in records)
    assert 30 < noisy < 100  # about one in five carries page noise

    counts = write_corpus(tmp_path, artists=7, tracks=300, seed=3)
    assert sum(counts.values()) == 300 and len(list(tmp_path.glob("*.jsonl"))) == 7
    name = records[0]["artist"]
    fetched = CorpusSource(tmp_path).fetch(ArtistSpec(name=name))
    assert len(fetched.tracks) == counts[slugify(name)]
    rows = prepare_rows(slugify(name), FetchResult(tracks=fetched.tracks))
    kept = [row for row in rows if row.status == "kept"]
    assert len(kept) == len(rows)  # unique, clean, song-sized: nothing rejected
    assert json.loads((tmp_path / f"{slugify(name)}.jsonl").read_text().splitlines()[0])["themes"]
