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

from rap_pipeline.defs.analyses.analyzer import Analyzer
from rap_pipeline.defs.analyses.emotion.classifier import TransformersEmotionAnalyzer
from rap_pipeline.defs.analyses.emotion.lexicon import LexiconEmotionAnalyzer, lexicon_words
from rap_pipeline.defs.analyses.emotion.model import (
    ANALYZER_NAME,
    DEFAULT_EMOTION_MODEL,
    LEXICON_METHOD,
    NRC_EMOTIONS,
    NRC_SENTIMENTS,
    VERSION,
    EmotionModelUnavailableError,
    QuantizationUnavailableError,
)

__all__ = [
    "ANALYZER_NAME",
    "DEFAULT_EMOTION_MODEL",
    "LEXICON_METHOD",
    "NRC_EMOTIONS",
    "NRC_SENTIMENTS",
    "VERSION",
    "EmotionModelUnavailableError",
    "LexiconEmotionAnalyzer",
    "QuantizationUnavailableError",
    "TransformersEmotionAnalyzer",
    "lexicon_words",
    "load_emotion_analyzer",
]


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
