"""The whole asset graph as one readable document, checked in (``__snapshots__/``), so any change
to assets, deps, groups, partitions, code versions, automation, pools, checks, sensors,
schedules or jobs shows up in review as one diff.

After an intended graph change, update the snapshot and review its diff:

    .venv/bin/python -m pytest rap_pipeline_tests/test_defs_snapshot.py --snapshot-update
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from rap_pipeline.definitions import defs


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def describe_graph(loaded: dg.Definitions) -> dict[str, Any]:
    graph = loaded.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for definition in graph.assets_defs:
        for key in sorted(definition.keys, key=lambda k: k.to_user_string()):
            node = graph.get(key)
            condition = definition.automation_conditions_by_key.get(key)
            assets[key.to_user_string()] = {
                "group": definition.group_names_by_key[key],
                "deps": sorted(k.to_user_string() for k in node.parent_keys),
                "partitions": getattr(definition.partitions_def, "name", None)
                or _text(definition.partitions_def),
                "code_version": definition.code_versions_by_key.get(key),
                "automation_condition": condition.get_label() or _text(condition)
                if condition
                else None,
                "backfill_policy": _text(definition.backfill_policy),
                "pool": definition.op.pool if definition.is_executable else None,
                "retry_policy": _text(definition.op.retry_policy)
                if definition.is_executable
                else None,
                "kinds": sorted(definition.specs_by_key[key].kinds),
            }
    in_asset = {spec.key for d in graph.assets_defs if d.keys for spec in d.check_specs}
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": {
            "blocking": graph.get_check_spec(key).blocking,
            "computed_in_asset": key in in_asset,
        }
        for key in graph.asset_check_keys
    }
    repository = loaded.get_repository_def()
    return {
        "assets": assets,
        "checks": dict(sorted(checks.items())),
        "sensors": {
            sensor.name: {
                "default_status": sensor.default_status.value,
                "jobs": sorted(job.name for job in sensor.jobs) if sensor.has_jobs else [],
                "minimum_interval_seconds": sensor.minimum_interval_seconds,
            }
            for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)
        },
        "schedules": {
            schedule.name: {
                "cron": schedule.cron_schedule,
                "default_status": schedule.default_status.value,
                "job": schedule.job_name,
            }
            for schedule in sorted(repository.schedule_defs, key=lambda s: s.name)
        },
        "jobs": sorted(
            job.name for job in repository.get_all_jobs() if not job.name.startswith("__")
        ),
        "resources": sorted(loaded.resources or {}),
    }


def test_the_graph_is_the_reviewed_one(snapshot_json):
    assert describe_graph(defs()) == snapshot_json
