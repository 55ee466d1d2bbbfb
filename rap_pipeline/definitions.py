"""The code location: everything under ``defs/``, plus what applies across it."""

import dagster as dg
from dotenv import load_dotenv

import rap_pipeline.defs
from rap_pipeline.core.kubernetes import executor
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.jobs import RETRAINED
from rap_pipeline.defs.resources import build_resources

# The daemon evaluates every asset's automation condition on each tick (declared running, so
# nobody has to switch it on in the UI). A tick that requests several partitions of an asset
# launches a backfill (emit_backfills), which the assets' backfill policies batch.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all() - RETRAINED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    emit_backfills=True,
)
# The nightly retraining of the predictors and trends (their conditions hold the cron) has a
# sensor of its own, so it can be switched off in the UI without stopping the rest.
retraining_sensor = dg.AutomationConditionSensorDefinition(
    "nightly_retraining",
    target=RETRAINED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)


def _with_model_versions(definitions: dg.Definitions, settings: Settings) -> dg.Definitions:
    """The local models' ids in the code versions of the assets they make: configuring another
    embedding or emotion model re-runs those assets for every partition (automation's
    code_version_changed). Not the LLM's: a new paid model applies to partitions as they next
    run, or to all with `rap-pipeline backfill llm_analysis --all`."""
    models = {
        "lyric_embeddings": settings.embedding_model,
        "emotion_analysis": settings.emotion_model,
    }

    def versioned(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(
            code_version=f"{spec.code_version}+{models[spec.key.path[-1]]}"
        )

    return definitions.map_resolved_asset_specs(func=versioned, selection=list(models))


def build_definitions(settings: Settings) -> dg.Definitions:
    """The whole code location with resources built from ``settings``."""
    load_dotenv(override=False)  # secrets in .env reach resources as EnvVar, by name
    merged = dg.Definitions.merge(
        # load_from_defs_folder, its successor, needs pyproject.toml beside the package, which
        # an installed wheel does not have
        dg.load_defs(defs_root=rap_pipeline.defs),
        dg.Definitions(
            sensors=[automation_sensor, retraining_sensor],
            resources=build_resources(settings),
            # Assets talk to PostgreSQL and external APIs; a run covers many partitions
            # (batched runs), so steps run in process (~20 ms) rather than in a subprocess
            # each (~3 s); on Kubernetes (RAP_EXECUTOR=k8s) each step may get its own pod.
            executor=executor(settings.executor),
        ),
    )
    return _with_model_versions(merged, settings)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings())
