"""torch's thread count, one rule for every model the pipeline runs."""

from __future__ import annotations

import os


def set_torch_threads(threads: int | None = None) -> None:
    """``threads`` (RAP_TORCH_THREADS through the resources), else one per core."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
