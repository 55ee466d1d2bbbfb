from pathlib import Path

import dagster as dg


class ArtifactsResource(dg.ConfigurableResource):
    """Where model files and trend plots are written: ``artifacts/`` under RAP_DATA_DIR."""

    directory: str

    @property
    def path(self) -> Path:
        path = Path(self.directory)
        path.mkdir(parents=True, exist_ok=True)
        return path
