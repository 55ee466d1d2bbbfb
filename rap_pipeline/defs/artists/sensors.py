"""Watches the artists file and adds new artists as partitions, with a run for each."""

import hashlib
from pathlib import Path

import dagster as dg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.artists.registry import read_artists_file, register_artists
from rap_pipeline.defs.jobs import main_job


class ArtistsFileResource(dg.ConfigurableResource):
    """The YAML file listing the artists to collect (RAP_ARTISTS_FILE, default artists.yaml)."""

    path: str = "artists.yaml"


@dg.sensor(job=main_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def new_artists_sensor(
    context: dg.SensorEvaluationContext,
    database: DatabaseResource,
    artists_file: ArtistsFileResource,
) -> dg.SensorResult | dg.SkipReason:
    """Adds the artists-file entries that are not partitions yet and requests one run of the
    main job for each new artist only. The cursor is the file's hash, so an unchanged file
    costs one read."""
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
        run_requests=[
            dg.RunRequest(partition_key=slug, run_key=f"new-artist:{slug}") for slug in new
        ],
        cursor=digest,
    )
