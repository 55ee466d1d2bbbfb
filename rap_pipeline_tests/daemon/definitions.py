"""The code location the daemon test loads: the real definitions, with two changes a test
needs and a user would make in code: every sensor ticks every few seconds instead of minutes
(the nightly retraining is left out), and, when RAP_TEST_NEW_CODE_VERSION names an asset,
that asset has a new code version (as after a change to its analyzer)."""

import os

import dagster as dg

from rap_pipeline.core.settings import Settings
from rap_pipeline.definitions import build_definitions

TICK_SECONDS = 3


def _fast(sensor: dg.SensorDefinition) -> dg.SensorDefinition:
    if isinstance(sensor, dg.AutomationConditionSensorDefinition):
        return dg.AutomationConditionSensorDefinition(
            sensor.name,
            target=sensor.asset_selection,
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=TICK_SECONDS,
            emit_backfills=True,
        )
    return dg.sensor(
        name=sensor.name,
        target=sensor.targets[0].resolvable_to_job.selection if sensor.targets else None,
        minimum_interval_seconds=TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(sensor._raw_fn)  # noqa: SLF001 - the undecorated function, re-decorated


def _definitions() -> dg.Definitions:
    real = build_definitions(Settings())
    renamed = os.environ.get("RAP_TEST_NEW_CODE_VERSION")
    assets = [
        dg.map_asset_specs(lambda spec: spec.replace_attributes(code_version="new"), [a])[0]
        if isinstance(a, dg.AssetsDefinition) and a.key.to_user_string() == renamed
        else a
        for a in real.assets
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=real.asset_checks,
        jobs=real.jobs,
        # the nightly retraining and the weekly re-enrichment would run if a test crossed their
        # hour; test_automation and test_due_sensors cover them
        sensors=[_fast(sensor) for sensor in real.sensors if sensor.name != "nightly_retraining"],
        resources=real.resources,
        executor=real.executor,
    )


defs = _definitions()
