"""``TransformersEmotionAnalyzer``: whole songs through a transformers classifier, chunked by
stanza, token-weighted mean."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rap_pipeline.core.chunking import chunk_lyrics
from rap_pipeline.core.torch_threads import set_torch_threads
from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    AnalyzerInfo,
    MetricRange,
    TrackText,
)
from rap_pipeline.defs.analyses.emotion.model import (
    _NO_LIMIT,
    _OFFSET_POSITION_MODELS,
    _UNBOUNDED,
    ANALYZER_NAME,
    VERSION,
    _short_cause,
    load_pretrained,
    quantize_linear_int8,
)

log = logging.getLogger(__name__)


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
