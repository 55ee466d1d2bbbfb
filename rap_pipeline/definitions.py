"""The code location: everything under ``defs/``, plus what applies across it."""

import dagster as dg

import rap_pipeline.defs


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_defs(defs_root=rap_pipeline.defs),
        # Assets talk to PostgreSQL and external APIs; parallelism comes from one run per
        # artist partition, so steps run in process (~20 ms) rather than in a subprocess
        # each (~3 s).
        dg.Definitions(executor=dg.in_process_executor),
    )
