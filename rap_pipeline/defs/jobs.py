import dagster as dg

from rap_pipeline.defs.freshness import freshness_checks

# The predictors and trends: unpartitioned, over every artist partition.
RETRAINED = dg.AssetSelection.groups("predictors")

# Everything for the artists of a run, in dependency order: what `rap-pipeline run` executes
# over each range of partitions. The freshness checks judge all partitions on their own
# schedule, not after each run; the predictors and trends learn from all partitions after them.
main_job = dg.define_asset_job(
    "main",
    selection=dg.AssetSelection.all() - dg.AssetSelection.checks(freshness_checks) - RETRAINED,
    description="Materializes every asset (and its checks) for a range of artist partitions.",
)

retrain_job = dg.define_asset_job(
    "retrain",
    selection=RETRAINED,
    description="Trains the predictors and recomputes the trends over every artist partition.",
)
