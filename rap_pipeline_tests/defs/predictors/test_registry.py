"""The model registry in the real database: round trip, one promoted version, artifacts that
are checked on load, and no half-registered version."""

from pathlib import Path

import psycopg
import pytest
from sklearn.dummy import DummyRegressor

from rap_pipeline.defs.predictors.registry import (
    Artifact,
    RegistryError,
    latest_version,
    list_versions,
    load_artifact,
    promoted_version,
    register,
)


def artifact(constant: float) -> Artifact:
    model = DummyRegressor(strategy="constant", constant=constant).fit([[0.0]], [constant])
    return Artifact(model, ["rule_based_analysis:mtld"], ["popularity"], {"rule_based": "1/rules"})


def add(conn, directory: Path, constant: float, promote: bool):
    return register(
        conn,
        directory,
        name="popularity_predictor",
        code_version="1",
        target="Spotify popularity",
        artifact=artifact(constant),
        training={"tracks": 10, "artists": 5, "data_hash": f"hash-{constant}"},
        metrics={"scores": {}},
        promote=promote,
        decision="promoted" if promote else "not promoted",
    )


def test_versions_round_trip_and_one_is_promoted_at_a_time(database_url: str, tmp_path: Path):
    with psycopg.connect(database_url) as conn:
        first = add(conn, tmp_path, 40.0, promote=True)
        second = add(conn, tmp_path, 50.0, promote=False)
        assert (first.version, second.version) == (1, 2)
        assert promoted_version(conn, "popularity_predictor").version == 1
        assert latest_version(conn, "popularity_predictor").version == 2

        third = add(conn, tmp_path, 60.0, promote=True)
        assert [(m.version, m.promoted) for m in list_versions(conn)] == [
            (1, False),
            (2, False),
            (3, True),
        ]
        loaded = load_artifact(tmp_path, third)
        assert loaded.pipeline.predict([[1.0]])[0] == 60.0
        assert loaded.features == ["rule_based_analysis:mtld"] and third.training["tracks"] == 10
        with pytest.raises(psycopg.errors.UniqueViolation):  # the database holds the rule too
            conn.execute("UPDATE models SET promoted = true, promoted_at = now()")


def test_a_changed_or_missing_artifact_is_refused(database_url: str, tmp_path: Path):
    with psycopg.connect(database_url) as conn:
        model = add(conn, tmp_path, 40.0, promote=True)
    path = tmp_path / model.artifact_path
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(RegistryError, match="changed since it was registered"):
        load_artifact(tmp_path, model)
    path.unlink()
    with pytest.raises(RegistryError, match="is missing"):
        load_artifact(tmp_path, model)


def test_a_failed_registration_leaves_neither_row_nor_file(database_url: str, tmp_path: Path):
    with psycopg.connect(database_url) as conn:
        with pytest.raises(TypeError):  # metrics that are not JSON: the insert fails
            register(
                conn,
                tmp_path,
                name="popularity_predictor",
                code_version="1",
                target="Spotify popularity",
                artifact=artifact(40.0),
                training={},
                metrics={"not json": object()},
                promote=True,
                decision="promoted",
            )
        assert list_versions(conn) == []
    assert list(tmp_path.rglob("*.joblib")) == [] and list(tmp_path.rglob("*.tmp")) == []
