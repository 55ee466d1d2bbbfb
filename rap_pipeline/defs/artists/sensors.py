"""Watches the artists file and adds new artists as partitions; the automation sensor then
materializes each new partition (``core/automation.py``)."""

import hashlib
from pathlib import Path

import dagster as dg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.due import due_partitions_tick
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.artists.registry import read_artists_file, register_artists


class ArtistsFileResource(dg.ConfigurableResource):
    """The YAML file listing the artists to collect (RAP_ARTISTS_FILE, default artists.yaml)."""

    path: str = "artists.yaml"


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def new_artists_sensor(
    context: dg.SensorEvaluationContext,
    database: DatabaseResource,
    artists_file: ArtistsFileResource,
) -> dg.SensorResult | dg.SkipReason:
    """Adds the artists-file entries that are not partitions yet (and registers them in the
    ``artists`` table). It requests no run: a new partition is what the assets' automation
    conditions materialize, so a new artist is run once, by the automation sensor. The cursor
    is the file's hash, so an unchanged file costs one read."""
    path = Path(artists_file.path)
    if not path.exists():
        return dg.SkipReason(f"no artists file at {path.resolve()}")
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest == context.cursor:
        return dg.SkipReason("artists file unchanged")
    specs = read_artists_file(path)
    known = set(context.instance.get_dynamic_partitions(artists_partitions.name))
    with database.connect() as conn:
        register_artists(conn, specs)
    new = [spec.slug for spec in specs if spec.slug not in known]
    return dg.SensorResult(
        dynamic_partitions_requests=[artists_partitions.build_add_request(new)] if new else [],
        cursor=digest,
    )


# partitions that failed inside a multi-partition run (see batches.py), when their retry is due
FAILED_PARTITIONS_SQL = """SELECT asset, artist_slug, next_attempt_at AS due_at
                           FROM partition_failures"""


@dg.sensor(
    target=dg.AssetSelection.all(),
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def failed_partitions_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult:
    """Runs again, in batched runs, the partitions that failed inside a run that finished the
    others (table ``partition_failures``), once their back-off (10 min, 1 h, 6 h, then daily)
    has expired. Only the asset that failed runs."""
    with database.connect() as conn:
        return due_partitions_tick(context, conn, FAILED_PARTITIONS_SQL, {}, "failed partitions")
