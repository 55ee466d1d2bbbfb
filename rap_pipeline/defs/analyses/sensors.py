"""Asking failed analyses again once their back-off has expired (the LLM above all: each
failure records when it may be asked again, see sql/006)."""

import json

import dagster as dg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses import emotion, llm
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
from rap_pipeline.defs.artists.due import due_partitions_tick

# analyzer name → (its asset, its current version): failures of older versions are not asked
ANALYZER_ASSETS = {
    "rule_based": ("rule_based_analysis", RuleBasedAnalyzer.info.version),
    "emotion": ("emotion_analysis", emotion.VERSION),
    "llm": ("llm_analysis", llm.PROMPT_VERSION),
}
DUE_SQL = """SELECT a.asset, f.artist_slug, f.next_attempt_at AS due_at
             FROM analyses f
             JOIN (SELECT * FROM jsonb_to_recordset(%(assets)s::jsonb)
                     AS x(analyzer text, asset text, version text)) a
               ON a.analyzer = f.analyzer AND a.version = f.analyzer_version
             WHERE f.status = 'failed' AND f.next_attempt_at IS NOT NULL"""
DUE_PARAMS = {
    "assets": json.dumps(
        [
            {"analyzer": name, "asset": asset, "version": version}
            for name, (asset, version) in ANALYZER_ASSETS.items()
        ]
    )
}


@dg.sensor(
    target=[asset for asset, _ in ANALYZER_ASSETS.values()],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def analysis_retry_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult:
    """Runs an analyzer again, in batched runs, for the partitions where a failed analysis of
    its current version reached its next attempt time since the last tick. Only that
    analyzer's asset runs."""
    with database.connect() as conn:
        return due_partitions_tick(context, conn, DUE_SQL, DUE_PARAMS, "failed analyses")
