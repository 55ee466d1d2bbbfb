import dagster as dg

# Everything for one artist, in dependency order: what `rap-pipeline run` executes per artist
# and what the new-artists sensor requests.
main_job = dg.define_asset_job(
    "main",
    selection=dg.AssetSelection.all(),
    description="Materializes every asset (and its checks) for one artist partition.",
)
