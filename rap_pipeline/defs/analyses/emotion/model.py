"""The emotion model: its labels and limits, loading it from a hub id or a folder (offline first),
and int8 quantization."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

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
