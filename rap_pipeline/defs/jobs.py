import dagster as dg

from rap_pipeline.defs.artists.partitions import artists_partitions

# Everything for one artist, in dependency order: what `rap-pipeline run` executes per artist
# and what the new-artists sensor requests.
main_job = dg.define_asset_job(
    "main",
    selection=dg.AssetSelection.all(),
    partitions_def=artists_partitions,
    description="Materializes every asset (and its checks) for one artist partition.",
)
