import dagster as dg

from rap_pipeline.defs.freshness import freshness_checks

# Everything for the artists of a run, in dependency order: what `rap-pipeline run` executes
# over each range of partitions. The freshness checks judge all partitions on their own
# schedule, not after each run.
main_job = dg.define_asset_job(
    "main",
    selection=dg.AssetSelection.all() - dg.AssetSelection.checks(freshness_checks),
    description="Materializes every asset (and its checks) for a range of artist partitions.",
)
