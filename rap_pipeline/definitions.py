"""The code location: everything under ``defs/``, plus what applies across it."""

import dagster as dg
from dotenv import load_dotenv

import rap_pipeline.defs
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.resources import build_resources

# The daemon evaluates every asset's automation condition on each tick (declared running, so
# nobody has to switch it on in the UI). A tick that requests several partitions of an asset
# launches a backfill (emit_backfills), which the assets' backfill policies batch.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    emit_backfills=True,
)


def build_definitions(settings: Settings) -> dg.Definitions:
    """The whole code location with resources built from ``settings``."""
    load_dotenv(override=False)  # secrets in .env reach resources as EnvVar, by name
    return dg.Definitions.merge(
        # load_from_defs_folder, its successor, needs pyproject.toml beside the package, which
        # an installed wheel does not have
        dg.load_defs(defs_root=rap_pipeline.defs),
        dg.Definitions(
            sensors=[automation_sensor],
            resources=build_resources(settings),
            # Assets talk to PostgreSQL and external APIs; parallelism comes from one run per
            # artist partition, so steps run in process (~20 ms) rather than in a subprocess
            # each (~3 s).
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings())
