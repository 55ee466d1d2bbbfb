"""Emotion of whole songs: a transformers classifier, or the NRC lexicon when it cannot load.

Pure Python, no Dagster and no database.

**Chunking.** A classifier such as ``j-hartmann/emotion-english-distilroberta-base`` reads at
most 512 tokens, and most songs are longer. Rather than classifying the first 512 tokens, each
song is split like the embeddings split it (``core.chunking.chunk_lyrics``): by stanza,
a stanza over the limit at line boundaries, short stanzas merged into the next. A chunk still
over the limit (one very long line) is cut into consecutive token windows by the tokenizer's
overflow, so every token of the song is read exactly once; ``tokens`` counts them (special
tokens excluded) and ``chunks`` counts the windows.

**Batching and aggregation.** All windows of all tracks of an ``analyze`` call are sorted by
length and run ``batch_size`` at a time under ``torch.inference_mode()``, so a batch pads to
nearly equal lengths; results are put back in input order. A track's probabilities are the
mean of its windows' softmax probabilities weighted by each window's token count, so a long
verse weighs more than a two-line hook. ``dominant_emotion`` is the most probable label.
Linear layers can be quantized to int8 (dynamic quantization, CPU) for about twice the speed.

**Loading and fallback.** ``load_emotion_analyzer`` loads from a local folder or the local
Hugging Face cache first (no network). Only when that fails and ``HF_HUB_OFFLINE`` is not set
does it ask the hub, first with one HEAD request bounded by ``HF_HUB_ETAG_TIMEOUT`` (no
retries): huggingface_hub retries network errors five times with backoff, so an offline
``from_pretrained`` takes about 45 s to fail, while the probe fails in well under a second.
When the model cannot be loaded and ``fallback`` is allowed, the NRC lexicon analyzer is
returned with the reason; its results say ``method="lexicon:nrc"``, never the model's name.

**The lexicon.** ``LexiconEmotionAnalyzer`` looks words up in the NRC Emotion Lexicon bundled
with nrclex (read directly: nrclex's own raw-text path needs TextBlob/NLTK data). Emotion
shares are each emotion's hits over all emotion hits, so they sum to 1 like the classifier's
probabilities when any emotion word is found.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rap_pipeline.core.chunking import chunk_lyrics
from rap_pipeline.core.torch_threads import set_torch_threads
from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    Analyzer,
    AnalyzerInfo,
    MetricRange,
    TrackText,
)

log = logging.getLogger(__name__)

DEFAULT_EMOTION_MODEL = "j-hartmann/emotion-english-distilroberta-base"
ANALYZER_NAME = "emotion"
VERSION = "1"
LEXICON_METHOD = "lexicon:nrc"
NRC_EMOTIONS = (
    "anger",
    "anticipation",
    "disgust",
    "fear",
    "joy",
    "sadness",
    "surprise",
    "trust",
)
NRC_SENTIMENTS = ("positive", "negative")
_UNBOUNDED = 1e9
# RoBERTa-style position ids start after the padding index, so the usable length is
# max_position_embeddings - pad_token_id - 1 (514 -> 512)
_OFFSET_POSITION_MODELS = frozenset({"roberta", "xlm-roberta", "camembert", "data2vec-text"})
# tokenizers without a real limit report a huge sentinel (int(1e30))
_NO_LIMIT = 1_000_000


class EmotionModelUnavailableError(RuntimeError):
    """The classifier could not be loaded; ``cause`` is a one-line reason."""

    def __init__(self, model_id: str, cause: str) -> None:
        super().__init__(f"emotion model {model_id!r} could not be loaded: {cause}")
        self.model_id = model_id
        self.cause = cause


class QuantizationUnavailableError(RuntimeError):
    pass


# --- loading --------------------------------------------------------------------------------


def _short_cause(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def hub_offline() -> bool:
    """True when the environment says not to use the network (read now, not at import)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.is_offline_mode() or any(
        (flag or "").strip().upper() in {"1", "ON", "YES", "TRUE"} for flag in flags
    )


def _from_pretrained(location: str, *, local_files_only: bool) -> tuple[Any, Any]:
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_files_only)
    model = AutoModelForSequenceClassification.from_pretrained(
        location, local_files_only=local_files_only
    )
    return tokenizer, model


def _probe_hub(model_id: str, timeout: float) -> None:
    """One HEAD request for the model's config, no retries: raises a short reason when the hub
    cannot be reached or does not have the model."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = f"{constants.ENDPOINT}/{model_id}/resolve/main/config.json"
    try:
        response = get_session().head(url, headers=build_hf_headers(), timeout=timeout)
        hf_raise_for_status(response)
    except Exception as exc:
        raise EmotionModelUnavailableError(
            model_id, f"not in the local cache and the hub did not serve it ({_short_cause(exc)})"
        ) from exc


def load_pretrained(model_id: str, hub_timeout: float | None = None) -> tuple[Any, Any]:
    """Tokenizer and model from a local folder, the local cache, or (when the network is
    allowed and a quick probe succeeds) the hub. Raises ``EmotionModelUnavailableError``."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        try:
            return _from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:
            raise EmotionModelUnavailableError(model_id, _short_cause(exc)) from exc
    try:
        return _from_pretrained(model_id, local_files_only=True)
    except Exception as exc:
        cache_miss = exc
    if hub_offline():
        raise EmotionModelUnavailableError(
            model_id, "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
        ) from cache_miss
    from huggingface_hub import constants

    _probe_hub(model_id, hub_timeout if hub_timeout is not None else constants.HF_HUB_ETAG_TIMEOUT)
    try:
        return _from_pretrained(model_id, local_files_only=False)
    except Exception as exc:
        raise EmotionModelUnavailableError(model_id, _short_cause(exc)) from exc


def quantize_linear_int8(model: Any) -> Any:
    """Dynamic int8 quantization of the Linear layers (weights int8, activations quantized per
    batch), for CPU inference.

    torch 2.13 still ships ``torch.ao.quantization.quantize_dynamic`` (deprecated in favour of
    torchao, whose ``Int8DynamicActivationInt8WeightConfig`` runs about 20x *slower* than
    float32 on CPU in eager mode here, while torch.ao's runs about 2x faster), so torch.ao is
    used with its deprecation warnings silenced. A torch without it raises a clear error.
    """
    import torch

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:
        raise QuantizationUnavailableError(
            f"int8 quantization is not available in torch {torch.__version__} "
            "(torch.ao.quantization.quantize_dynamic is gone); run without quantize_int8"
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        except (RuntimeError, NotImplementedError) as exc:
            raise QuantizationUnavailableError(
                f"int8 dynamic quantization failed on this machine ({_short_cause(exc)}); "
                "run without quantize_int8"
            ) from exc


# --- the classifier -------------------------------------------------------------------------


def label_key(label: str) -> str:
    """``emotion_<label>``, lowercase, non-alphanumerics as underscores."""
    return "emotion_" + re.sub(r"[^a-z0-9]+", "_", str(label).lower()).strip("_")


def model_max_length(tokenizer: Any, config: Any) -> int:
    """Longest input the model takes, special tokens included: the smaller of the tokenizer's
    ``model_max_length`` and what the position embeddings allow."""
    limits = []
    if 0 < (tokenizer.model_max_length or 0) < _NO_LIMIT:
        limits.append(int(tokenizer.model_max_length))
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if getattr(config, "model_type", "") in _OFFSET_POSITION_MODELS:
            positions -= (config.pad_token_id or 0) + 1
        limits.append(int(positions))
    if not limits:
        raise ValueError("neither the tokenizer nor the model config gives a maximum length")
    return min(limits)


@dataclass(frozen=True)
class EncodedTrack:
    """The token windows of one song, each with its special tokens, each within the limit."""

    windows: list[list[int]]
    tokens: list[int]  # content tokens per window (special tokens excluded)


class TransformersEmotionAnalyzer:
    """A sequence-classification model over whole songs (see the module docstring)."""

    def __init__(
        self,
        model_id: str,
        batch_size: int = 16,
        quantize_int8: bool = False,
        max_tokens: int | None = None,
        *,
        threads: int | None = None,
        hub_timeout: float | None = None,
    ) -> None:
        """``max_tokens``: content tokens per chunk (special tokens excluded), at most what the
        model takes, which is the default."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_id = model_id
        self.batch_size = batch_size
        self.tokenizer, model = load_pretrained(model_id, hub_timeout)
        set_torch_threads(threads)
        model.eval()
        self.model = quantize_linear_int8(model) if quantize_int8 else model
        self.quantized = quantize_int8
        config = model.config
        self.labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        self.keys = [label_key(label) for label in self.labels]
        self.special_tokens = int(self.tokenizer.num_special_tokens_to_add())
        limit = model_max_length(self.tokenizer, config) - self.special_tokens
        self.max_tokens = limit if max_tokens is None else min(max_tokens, limit)
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must leave room for text (model limit {limit})")
        self.max_length = self.max_tokens + self.special_tokens
        method = f"transformers:{model_id}" + (":int8" if quantize_int8 else "")
        self.info = AnalyzerInfo(ANALYZER_NAME, VERSION, method, self._ranges())

    def _ranges(self) -> dict[str, MetricRange]:
        ranges = {
            key: MetricRange(0.0, 1.0, f"probability of {label}, token-weighted over chunks")
            for key, label in zip(self.keys, self.labels, strict=True)
        }
        ranges["chunks"] = MetricRange(1, _UNBOUNDED, "token windows the song was read in")
        ranges["tokens"] = MetricRange(1, _UNBOUNDED, "tokens read, special tokens excluded")
        return ranges

    # chunks -------------------------------------------------------------------------------

    def _count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer(texts, add_special_tokens=True, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def chunk_texts(self, lyrics: str) -> list[str]:
        """The song's stanza/line chunks, each within the model's limit except a single line
        too long on its own (``encode`` cuts that one into token windows)."""
        return [chunk.text for chunk in chunk_lyrics(lyrics, self._count_tokens, self.max_length)]

    def encode(self, lyrics: str) -> EncodedTrack:
        texts = self.chunk_texts(lyrics)
        if not texts:
            return EncodedTrack([], [])
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            return_overflowing_tokens=True,
            stride=0,
        )
        windows = [list(ids) for ids in encoded["input_ids"]]
        return EncodedTrack(windows, [len(ids) - self.special_tokens for ids in windows])

    # forward ------------------------------------------------------------------------------

    def _forward(self, windows: Sequence[list[int]]) -> np.ndarray:
        """Softmax probabilities of one padded batch of token windows."""
        import torch

        batch = self.tokenizer.pad({"input_ids": list(windows)}, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
        return torch.softmax(logits.float(), dim=-1).numpy()

    def _forward_sorted(self, windows: list[list[int]]) -> tuple[np.ndarray, dict[int, str]]:
        """Probabilities of every window in input order, run shortest first so each batch pads
        little. A batch that fails leaves NaN rows and an error per row instead of raising."""
        probs = np.full((len(windows), len(self.labels)), np.nan, dtype=np.float32)
        errors: dict[int, str] = {}
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            try:
                probs[rows] = self._forward([windows[i] for i in rows])
            except Exception as exc:  # a failed batch fails its tracks, not the whole call
                log.warning("emotion batch of %d windows failed: %s", len(rows), exc)
                errors.update(dict.fromkeys(rows, f"model forward failed: {_short_cause(exc)}"))
        return probs, errors

    def predict_chunks(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """The bare model on ready-made chunks: tokenize (truncating at the limit), forward in
        input order, softmax. One row per text, columns in ``self.labels`` order. For
        benchmarking the analyzer against the model on the same inputs."""
        size = batch_size or self.batch_size
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        if not ids:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.concatenate([self._forward(ids[i : i + size]) for i in range(0, len(ids), size)])

    # tracks -------------------------------------------------------------------------------

    def _values(self, probs: np.ndarray, tokens: list[int]) -> dict[str, Any]:
        weights = np.asarray(tokens, dtype=np.float64)
        mean = (probs.astype(np.float64) * weights[:, None]).sum(axis=0) / weights.sum()
        mean = mean / mean.sum()
        values: dict[str, Any] = {k: float(p) for k, p in zip(self.keys, mean, strict=True)}
        values["dominant_emotion"] = self.labels[int(np.argmax(mean))]
        values["chunks"] = len(tokens)
        values["tokens"] = int(weights.sum())
        return values

    def analyze(self, tracks: Sequence[TrackText]) -> list[AnalysisResult]:
        start = time.perf_counter()
        encoded: dict[int, EncodedTrack] = {}
        failures: dict[int, str] = {}
        for position, track in enumerate(tracks):
            if not track.lyrics.strip():
                failures[position] = "empty lyrics"
                continue
            try:
                encoded[position] = self.encode(track.lyrics)
            except Exception as exc:  # one bad track must not stop the batch
                failures[position] = f"tokenization failed: {_short_cause(exc)}"
                continue
            if sum(encoded[position].tokens) == 0:
                failures[position] = "no tokens in the lyrics"
                del encoded[position]

        windows: list[list[int]] = []
        rows: dict[int, range] = {}
        for position, track_windows in encoded.items():
            rows[position] = range(len(windows), len(windows) + len(track_windows.windows))
            windows.extend(track_windows.windows)
        probs, errors = self._forward_sorted(windows)

        for position, track_rows in rows.items():
            failed_rows = [errors[row] for row in track_rows if row in errors]
            if failed_rows:
                failures[position] = failed_rows[0]
        elapsed = time.perf_counter() - start
        total_tokens = sum(sum(e.tokens) for p, e in encoded.items() if p not in failures) or 1

        results = []
        for position, track in enumerate(tracks):
            if position in failures:
                results.append(AnalysisResult(track.track_id, "failed", error=failures[position]))
                continue
            tokens = encoded[position].tokens
            values = self._values(probs[rows[position].start : rows[position].stop], tokens)
            seconds = elapsed * sum(tokens) / total_tokens
            results.append(AnalysisResult(track.track_id, "ok", values, seconds=seconds))
        return results


# --- the lexicon ----------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*'?")


def load_nrc_lexicon() -> dict[str, list[str]]:
    """Word -> NRC affects (8 emotions + positive/negative), as bundled with nrclex."""
    text = resources.files("nrclex").joinpath("data", "nrc_en.json").read_text(encoding="utf-8")
    return json.loads(text)


def lexicon_words(text: str) -> list[str]:
    """Lowercase words, inner apostrophes kept ("don't"), a dropped g restored ("lovin'")."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word.endswith("in'"):
            word = word[:-1] + "g"
        words.append(word.rstrip("'"))
    return words


def _candidates(word: str) -> list[str]:
    """The word, then crude lemma guesses standing in for nrclex's TextBlob lemmatizer."""
    candidates = [word]
    if word.endswith("ies") and len(word) > 4:
        candidates.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 4:
        candidates.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        candidates.append(word[:-1])
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            candidates += [stem, stem + "e"]
    return candidates


class LexiconEmotionAnalyzer:
    """NRC Emotion Lexicon word counts: honest about being a lexicon (``lexicon:nrc``)."""

    def __init__(self, lexicon: Mapping[str, Sequence[str]] | None = None) -> None:
        self.lexicon = lexicon if lexicon is not None else load_nrc_lexicon()
        self.info = AnalyzerInfo(ANALYZER_NAME, VERSION, LEXICON_METHOD, self._ranges())

    @staticmethod
    def _ranges() -> dict[str, MetricRange]:
        ranges = {
            f"emotion_{emotion}": MetricRange(0.0, 1.0, f"share of NRC emotion hits: {emotion}")
            for emotion in NRC_EMOTIONS
        }
        for sentiment in NRC_SENTIMENTS:
            ranges[f"sentiment_{sentiment}"] = MetricRange(
                0.0, 1.0, f"share of NRC positive/negative hits that are {sentiment}"
            )
        ranges["matched_words"] = MetricRange(0, _UNBOUNDED, "words found in the NRC lexicon")
        ranges["words"] = MetricRange(1, _UNBOUNDED, "words in the lyrics")
        return ranges

    def _affects(self, word: str) -> Sequence[str] | None:
        for candidate in _candidates(word):
            affects = self.lexicon.get(candidate)
            if affects:
                return affects
        return None

    def score(self, lyrics: str) -> dict[str, Any]:
        words = lexicon_words(lyrics)
        if not words:
            raise ValueError("no words in the lyrics")
        hits: Counter[str] = Counter()
        matched = 0
        for word in words:
            affects = self._affects(word)
            if affects:
                matched += 1
                hits.update(affects)
        emotion_hits = sum(hits[e] for e in NRC_EMOTIONS)
        sentiment_hits = sum(hits[s] for s in NRC_SENTIMENTS)
        values: dict[str, Any] = {
            f"emotion_{e}": hits[e] / emotion_hits if emotion_hits else 0.0 for e in NRC_EMOTIONS
        }
        for sentiment in NRC_SENTIMENTS:
            share = hits[sentiment] / sentiment_hits if sentiment_hits else 0.0
            values[f"sentiment_{sentiment}"] = share
        # ties go to the first emotion in NRC order; no emotion word at all gives None
        values["dominant_emotion"] = (
            max(NRC_EMOTIONS, key=lambda e: hits[e]) if emotion_hits else None
        )
        values["matched_words"] = matched
        values["words"] = len(words)
        return values

    def analyze(self, tracks: Sequence[TrackText]) -> list[AnalysisResult]:
        return [self._analyze_one(track) for track in tracks]

    def _analyze_one(self, track: TrackText) -> AnalysisResult:
        start = time.perf_counter()
        try:
            if not track.lyrics.strip():
                raise ValueError("empty lyrics")
            values = self.score(track.lyrics)
        except Exception as exc:  # one bad track must not stop the batch
            error = str(exc) if isinstance(exc, ValueError) else _short_cause(exc)
            return AnalysisResult(
                track.track_id, "failed", error=error, seconds=time.perf_counter() - start
            )
        return AnalysisResult(track.track_id, "ok", values, seconds=time.perf_counter() - start)


# --- choosing one ---------------------------------------------------------------------------


def load_emotion_analyzer(
    model_id: str = DEFAULT_EMOTION_MODEL,
    *,
    fallback: bool = True,
    batch_size: int = 16,
    quantize_int8: bool = False,
    max_tokens: int | None = None,
    threads: int | None = None,
    hub_timeout: float | None = None,
) -> tuple[Analyzer, str | None]:
    """The transformers analyzer and ``None``; or, when the model cannot be loaded and
    ``fallback`` is allowed, the NRC lexicon analyzer and the reason (which names the model).
    With ``fallback=False`` a load failure raises ``EmotionModelUnavailableError``. Other
    errors (a bad ``batch_size``, int8 unavailable) always raise: they are not about the model
    being out of reach."""
    try:
        analyzer = TransformersEmotionAnalyzer(
            model_id,
            batch_size=batch_size,
            quantize_int8=quantize_int8,
            max_tokens=max_tokens,
            threads=threads,
            hub_timeout=hub_timeout,
        )
    except EmotionModelUnavailableError as exc:
        if not fallback:
            raise
        reason = f"could not load {model_id}: {exc.cause}; using the NRC lexicon instead"
        return LexiconEmotionAnalyzer(), reason  # the caller reports it
    return analyzer, None
