"""The model registry: every trained version of every predictor (table ``models``) with its
artifact, a joblib file under the artifacts directory whose SHA-256 the table keeps, so a
loaded model is the one that was evaluated."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


class RegistryError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    code_version: str
    target: str
    features: list[str]
    training: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str
    artifact_sha256: str
    promoted: bool
    decision: str
    created_at: dt.datetime
    promoted_at: dt.datetime | None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class Artifact:
    """What a model file holds: the fitted pipeline and what it reads and predicts."""

    pipeline: Any  # a fitted scikit-learn Pipeline
    features: list[str]
    targets: list[str]
    sources: dict[str, str]  # how each feature source was computed (analyzer method, model id)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def register(
    conn: psycopg.Connection,
    artifacts_dir: Path,
    *,
    name: str,
    code_version: str,
    target: str,
    artifact: Artifact,
    training: dict[str, Any],
    metrics: dict[str, Any],
    promote: bool,
    decision: str,
) -> ModelVersion:
    """Stores a new version of ``name`` (file first, then its row, in one transaction that also
    moves the promotion when ``promote``). A failure leaves neither a row nor a file."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('models:' || %s))", (name,))
        version = conn.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM models WHERE name = %s", (name,)
        ).fetchone()[0]
        relative = Path(name) / f"v{version}.joblib"
        path = artifacts_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            joblib.dump(artifact, tmp)
        os.replace(tmp.name, path)  # a reader never sees half a file
        try:
            if promote:
                conn.execute(
                    "UPDATE models SET promoted = false, promoted_at = NULL "
                    "WHERE name = %s AND promoted",
                    (name,),
                )
            conn.execute(
                """INSERT INTO models (name, version, code_version, target, features, training,
                       metrics, artifact_path, artifact_sha256, promoted, decision, promoted_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                           CASE WHEN %s THEN now() END)""",
                (
                    name,
                    version,
                    code_version,
                    target,
                    Jsonb(artifact.features),
                    Jsonb(training),
                    Jsonb(metrics),
                    relative.as_posix(),
                    _sha256(path),
                    promote,
                    decision,
                    promote,
                ),
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return get_version(conn, name, version)


_SELECT = """SELECT name, version, code_version, target, features, training, metrics,
                    artifact_path, artifact_sha256, promoted, decision, created_at, promoted_at
             FROM models"""


def get_version(conn: psycopg.Connection, name: str, version: int) -> ModelVersion:
    with conn.cursor(row_factory=class_row(ModelVersion)) as cur:
        row = cur.execute(f"{_SELECT} WHERE name = %s AND version = %s", (name, version)).fetchone()
    if row is None:
        raise RegistryError(f"{name} has no version {version}")
    return row


def promoted_version(conn: psycopg.Connection, name: str) -> ModelVersion | None:
    with conn.cursor(row_factory=class_row(ModelVersion)) as cur:
        return cur.execute(f"{_SELECT} WHERE name = %s AND promoted", (name,)).fetchone()


def latest_version(conn: psycopg.Connection, name: str) -> ModelVersion | None:
    with conn.cursor(row_factory=class_row(ModelVersion)) as cur:
        return cur.execute(
            f"{_SELECT} WHERE name = %s ORDER BY version DESC LIMIT 1", (name,)
        ).fetchone()


def list_versions(conn: psycopg.Connection, name: str | None = None) -> list[ModelVersion]:
    with conn.cursor(row_factory=class_row(ModelVersion)) as cur:
        return cur.execute(
            f"{_SELECT} WHERE %(name)s::text IS NULL OR name = %(name)s ORDER BY name, version",
            {"name": name},
        ).fetchall()


def load_artifact(artifacts_dir: Path, model: ModelVersion) -> Artifact:
    """The model's file, after checking it is the one that was registered."""
    path = artifacts_dir / model.artifact_path
    if not path.is_file():
        raise RegistryError(f"{model.label}: artifact {path} is missing")
    if _sha256(path) != model.artifact_sha256:
        raise RegistryError(f"{model.label}: artifact {path} changed since it was registered")
    return joblib.load(path)
