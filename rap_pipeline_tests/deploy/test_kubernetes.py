"""deploy/kubernetes/, validated offline (no cluster, no helm binary here): the plain
manifests against Kubernetes' schemas (kubernetes-validate), and the Dagster instance the
Helm values produce, rendered as the chart's instance templates do, through Dagster's and
dagster-k8s's own config schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from rap_pipeline.core.kubernetes import MODEL_STEP
from rap_pipeline.core.settings import Settings
from rap_pipeline.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
VALUES = yaml.safe_load((KUBERNETES / "values.yaml").read_text())


def test_the_plain_manifests_are_valid_kubernetes():
    manifests = sorted(str(p) for p in (KUBERNETES / "manifests").glob("*.yaml"))
    assert len(manifests) >= 3
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubernetes-validate"),
            "--strict",
            "-k",
            "1.30.0",
            *manifests,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = {
        (doc["kind"], doc["metadata"]["name"])
        for path in manifests
        for doc in yaml.safe_load_all(Path(path).read_text())
    }
    assert {("Deployment", "rap-pipeline-exporter"), ("Service", "redis")} <= kinds


def rendered_instance() -> dict:
    """The dagster.yaml sections the chart renders from these values (its templates
    helpers/instance/_run-launcher.tpl, _run-coordinator.tpl, _concurrency.tpl, _postgresql.tpl),
    with the chart's own defaults for what the values leave out."""
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = launcher["runK8sConfig"]
    keys = {
        "containerConfig": "container_config",
        "podSpecConfig": "pod_spec_config",
        "jobSpecConfig": "job_spec_config",
    }
    concurrency = VALUES["concurrency"]
    postgres = VALUES["postgresql"]
    postgres_db = {
        "username": postgres["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": postgres["postgresqlHost"],
        "db_name": postgres["postgresqlDatabase"],
        "port": postgres["service"]["port"],
        "params": postgres["postgresqlParams"],
    }
    return {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "load_incluster_config": launcher["loadInclusterConfig"],
                "job_namespace": "rap-pipeline",
                "image_pull_policy": launcher["imagePullPolicy"],
                "service_account_name": VALUES["global"]["serviceAccountName"],
                "dagster_home": VALUES["global"]["dagsterHome"],
                "instance_config_map": "dagster-instance",
                "postgres_password_secret": VALUES["global"]["postgresqlSecretName"],
                "env_secrets": [s["name"] for s in launcher["envSecrets"]],
                "run_k8s_config": {keys[k]: v for k, v in run_k8s.items()},
            },
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
        "concurrency": {
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
            "runs": {
                "max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"],
            },
        },
    }


def test_the_instance_the_values_produce_is_valid_for_dagster_and_dagster_k8s(tmp_path: Path):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher

    instance = rendered_instance()
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path))
    launcher = process_config(K8sRunLauncher.config_type(), config["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    coordinator = process_config(
        QueuedRunCoordinator.config_type(), config["run_coordinator"].get("config") or {}
    )
    assert coordinator.success, coordinator.errors
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 12
    # every pod of a run mounts the shared data volume the manifests claim
    claim = yaml.safe_load((KUBERNETES / "manifests" / "data-volume.yaml").read_text())
    volumes = instance["run_launcher"]["config"]["run_k8s_config"]["pod_spec_config"]["volumes"]
    assert volumes[0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_the_user_deployment_runs_this_code_with_a_pod_per_step():
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "rap_pipeline.definitions"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    settings = Settings(executor=env["RAP_EXECUTOR"])
    definitions = build_definitions(settings)
    assert definitions.resolve_job_def("main").executor_def.name == "k8s"
    graph = definitions.resolve_asset_graph()
    for heavy in ("lyric_embeddings", "emotion_analysis"):
        tags = graph.get(dg.AssetKey(heavy)).assets_def.op.tags
        assert yaml.safe_load(tags["dagster-k8s/config"]) == MODEL_STEP["dagster-k8s/config"]
    assert build_definitions(Settings()).resolve_job_def("main").executor_def.name == ("in_process")
