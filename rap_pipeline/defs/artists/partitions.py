import dagster as dg

# The one partitions definition of the pipeline: a partition per artist, keyed by slug
# (see slugs.py); the display name lives in the `artists` table.
artists_partitions = dg.DynamicPartitionsDefinition(name="artists")
