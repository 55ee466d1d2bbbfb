"""The emotion analyzers, on a tiny classifier built and saved locally (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.emotion import (
    NRC_EMOTIONS,
    EmotionModelUnavailableError,
    LexiconEmotionAnalyzer,
    QuantizationUnavailableError,
    TransformersEmotionAnalyzer,
    load_emotion_analyzer,
)
from rap_pipeline_tests.fakes.tiny_emotion_model import (
    LABELS,
    MAX_LENGTH,
    SENTENCES,
    save_tiny_emotion_model,
)

VERSE = "\n".join(SENTENCES[:4])
LONG_SONG = "\n\n".join([VERSE, SENTENCES[4], VERSE, "\n".join(SENTENCES), VERSE])


def _track(track_id: int, lyrics: str) -> TrackText:
    return TrackText(track_id, f"song {track_id}", lyrics, f"hash{track_id}")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_emotion_model(tmp_path_factory.mktemp("tiny_emotion_model"))


@pytest.fixture(scope="module")
def analyzer(model_dir: Path) -> TransformersEmotionAnalyzer:
    return TransformersEmotionAnalyzer(str(model_dir), batch_size=3, threads=1)


def _probabilities(values: dict) -> np.ndarray:
    return np.array([values[f"emotion_{label}"] for label in LABELS])


def _content_tokens(analyzer: TransformersEmotionAnalyzer, text: str) -> int:
    ids = analyzer.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return len(ids)


# --- the transformers analyzer --------------------------------------------------------------


def test_info_and_limits(analyzer: TransformersEmotionAnalyzer, model_dir: Path) -> None:
    assert analyzer.labels == LABELS
    assert analyzer.max_length == MAX_LENGTH
    assert analyzer.max_tokens == MAX_LENGTH - 2
    assert analyzer.info.name == "emotion"
    assert analyzer.info.method == f"transformers:{model_dir}"
    assert set(analyzer.info.ranges) >= {f"emotion_{label}" for label in LABELS}


def test_probabilities_sum_to_one(analyzer: TransformersEmotionAnalyzer) -> None:
    (result,) = analyzer.analyze([_track(1, VERSE)])
    assert result.status == "ok"
    probabilities = _probabilities(result.values)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert result.values["dominant_emotion"] == LABELS[int(probabilities.argmax())]
    assert result.seconds > 0


def test_long_song_is_chunked_and_read_entirely(analyzer: TransformersEmotionAnalyzer) -> None:
    assert _content_tokens(analyzer, LONG_SONG) > 3 * analyzer.max_tokens
    (result,) = analyzer.analyze([_track(1, LONG_SONG)])
    assert result.values["chunks"] >= 4
    # WordLevel tokens ignore line breaks, so chunking loses or adds none
    assert result.values["tokens"] == _content_tokens(analyzer, LONG_SONG)


def test_a_line_longer_than_the_limit_is_read_in_windows(
    analyzer: TransformersEmotionAnalyzer,
) -> None:
    line = " ".join(SENTENCES * 2)  # one line of 80 tokens
    encoded = analyzer.encode(line)
    assert all(len(window) <= MAX_LENGTH for window in encoded.windows)
    assert len(encoded.windows) == 3
    (result,) = analyzer.analyze([_track(1, line)])
    assert result.values["tokens"] == _content_tokens(analyzer, line)
    assert result.values["chunks"] == 3


def test_track_is_the_token_weighted_mean_of_its_chunks(
    analyzer: TransformersEmotionAnalyzer,
) -> None:
    chunks = analyzer.chunk_texts(LONG_SONG)
    chunk_probabilities = analyzer.predict_chunks(chunks)
    weights = np.array([_content_tokens(analyzer, chunk) for chunk in chunks], dtype=float)
    expected = (chunk_probabilities * weights[:, None]).sum(axis=0) / weights.sum()
    (result,) = analyzer.analyze([_track(1, LONG_SONG)])
    np.testing.assert_allclose(_probabilities(result.values), expected, atol=1e-5)


def test_results_keep_input_order_despite_length_sorting(
    analyzer: TransformersEmotionAnalyzer,
) -> None:
    lyrics = [LONG_SONG, "fists up", VERSE, SENTENCES[5], "\n\n".join([VERSE, VERSE]), "joy"]
    tracks = [_track(10 + i, text) for i, text in enumerate(lyrics)]
    results = analyzer.analyze(tracks)
    assert [r.track_id for r in results] == [t.track_id for t in tracks]
    for track, result in zip(tracks, results, strict=True):
        (alone,) = analyzer.analyze([track])
        assert result.values["tokens"] == alone.values["tokens"]
        np.testing.assert_allclose(
            _probabilities(result.values), _probabilities(alone.values), atol=1e-5
        )


def test_bad_tracks_fail_alone(analyzer: TransformersEmotionAnalyzer) -> None:
    results = analyzer.analyze([_track(1, ""), _track(2, VERSE), _track(3, " \n\n ")])
    assert [r.status for r in results] == ["failed", "ok", "failed"]
    assert results[0].error == "empty lyrics"
    assert results[0].values is None


def test_a_failing_forward_fails_its_tracks_not_the_call(
    analyzer: TransformersEmotionAnalyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(windows: list[list[int]]) -> np.ndarray:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(analyzer, "_forward", broken)
    results = analyzer.analyze([_track(1, VERSE), _track(2, "")])
    assert [r.status for r in results] == ["failed", "failed"]
    assert "out of memory" in results[0].error


def test_max_tokens_makes_smaller_chunks(model_dir: Path) -> None:
    small = TransformersEmotionAnalyzer(str(model_dir), max_tokens=10, threads=1)
    assert small.max_length == 12
    (result,) = small.analyze([_track(1, LONG_SONG)])
    assert result.values["tokens"] == _content_tokens(small, LONG_SONG)
    assert all(len(window) <= 12 for window in small.encode(LONG_SONG).windows)


def test_int8_quantization_gives_close_probabilities(
    analyzer: TransformersEmotionAnalyzer, model_dir: Path
) -> None:
    try:
        quantized = TransformersEmotionAnalyzer(str(model_dir), quantize_int8=True, threads=1)
    except QuantizationUnavailableError as exc:
        pytest.skip(str(exc))
    assert quantized.info.method.endswith(":int8")
    tracks = [_track(1, LONG_SONG), _track(2, VERSE)]
    for exact, approx in zip(analyzer.analyze(tracks), quantized.analyze(tracks), strict=True):
        # int8 weights and activations move probabilities by ~0.015 on this tiny model
        np.testing.assert_allclose(
            _probabilities(approx.values), _probabilities(exact.values), atol=0.05
        )
        assert approx.values["dominant_emotion"] == exact.values["dominant_emotion"]


# --- loading and fallback -------------------------------------------------------------------


def test_unloadable_model_falls_back_to_the_lexicon_with_a_reason() -> None:
    analyzer, reason = load_emotion_analyzer("does/not-exist", hub_timeout=3)
    assert isinstance(analyzer, LexiconEmotionAnalyzer)
    assert analyzer.info.method == "lexicon:nrc"
    assert analyzer.info.name == "emotion"
    assert reason is not None
    assert "does/not-exist" in reason
    assert "NRC lexicon" in reason


def test_offline_mode_skips_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    analyzer, reason = load_emotion_analyzer("does/not-exist")
    assert isinstance(analyzer, LexiconEmotionAnalyzer)
    assert "HF_HUB_OFFLINE" in reason


def test_no_fallback_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmotionModelUnavailableError, match="does/not-exist"):
        load_emotion_analyzer("does/not-exist", fallback=False)


def test_a_loadable_model_gives_no_reason(model_dir: Path) -> None:
    analyzer, reason = load_emotion_analyzer(str(model_dir), threads=1)
    assert isinstance(analyzer, TransformersEmotionAnalyzer)
    assert reason is None


# --- the lexicon analyzer -------------------------------------------------------------------


@pytest.fixture(scope="module")
def lexicon() -> LexiconEmotionAnalyzer:
    return LexiconEmotionAnalyzer()


def test_sad_text_is_sad(lexicon: LexiconEmotionAnalyzer) -> None:
    text = (
        "I cry alone at the funeral, grieving, my heart broken\n"
        "Mourning the loss, cryin' in sorrow, so lonely and hopeless"
    )
    (result,) = lexicon.analyze([_track(1, text)])
    values = result.values
    assert values["dominant_emotion"] == "sadness"
    shares = [values[f"emotion_{emotion}"] for emotion in NRC_EMOTIONS]
    assert all(0.0 <= share <= 1.0 for share in shares)
    assert sum(shares) == pytest.approx(1.0)
    assert values["sentiment_negative"] > values["sentiment_positive"]
    assert 0 < values["matched_words"] <= values["words"]


def test_lexicon_without_emotion_words_and_empty_lyrics(
    lexicon: LexiconEmotionAnalyzer,
) -> None:
    no_emotion, empty = lexicon.analyze([_track(1, "la la la, uh, yeah"), _track(2, "  ")])
    assert no_emotion.status == "ok"
    assert no_emotion.values["dominant_emotion"] is None
    assert no_emotion.values["matched_words"] == 0
    assert empty.status == "failed"
    assert empty.error == "empty lyrics"


def test_lexicon_words_keep_apostrophes_and_restore_dropped_gs(
    lexicon: LexiconEmotionAnalyzer,
) -> None:
    from rap_pipeline.defs.analyses.emotion import lexicon_words

    assert lexicon_words("Don't stop lovin' 'em") == ["don't", "stop", "loving", "em"]
    assert lexicon.score("lovin'")["emotion_joy"] > 0
