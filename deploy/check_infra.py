"""What `make deploy-check` stands on: the Docker engine, the offline image build, the compose
project, the emulator, throwaway databases, and a CPU sampler for run containers.

Used by deploy/check.py only; runs on the host with the project's virtualenv.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BASE_IMAGE = os.environ.get("MONOLYTH_DEPLOY_BASE_IMAGE", "monolyth-base:bookworm")
DEPENDENCY_CACHE = "monolyth-deps-cache"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
ADMIN_PG_URL = os.environ.get("MONOLYTH_DEPLOY_CHECK_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def sh(*cmd: str, check: bool = True, timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {done.returncode}: " + " | ".join(tail))
    return done


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _apt_install(*packages: str) -> None:
    sh("apt-get", "update", timeout=600)
    sh("apt-get", "install", "-y", "--no-install-recommends", *packages, timeout=900,
       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


class Engine:
    """The Docker engine: installed from Debian's packages and started here if absent."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: subprocess.Popen[bytes] | None = None

    def ensure(self) -> str:
        missing = [
            pkg for binary, pkg in (("dockerd", "docker.io"), ("docker-compose", "docker-compose"),
                                    ("debootstrap", "debootstrap"))
            if shutil.which(binary) is None
        ]
        if missing:
            _apt_install(*missing)
        if sh("docker", "info", check=False, timeout=30).returncode == 0:
            return "engine already running"
        log = open(self.workdir / "dockerd.log", "wb")  # noqa: SIM115 - lives as long as dockerd
        self.started = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false"], stdout=log, stderr=subprocess.STDOUT
        )
        wait_until("docker info", lambda: sh("docker", "info", check=False, timeout=30).returncode == 0, 60)
        return f"started dockerd (pid {self.started.pid})"

    def stop(self) -> None:
        if self.started is not None:
            self.started.send_signal(signal.SIGTERM)
            try:
                self.started.wait(60)
            except subprocess.TimeoutExpired:
                self.started.kill()


def ensure_base_image(workdir: Path) -> str:
    """A Debian base from debootstrap (no registry here), cached by name."""
    if sh("docker", "image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return f"{BASE_IMAGE} cached"
    rootfs = workdir / "rootfs"
    sh("debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip,ca-certificates",
       "bookworm", str(rootfs), DEBIAN_MIRROR, timeout=900)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    sh("docker", "import", "-", BASE_IMAGE, stdin=tar.stdout, timeout=600)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    return f"{BASE_IMAGE} built with debootstrap"


def build_image(python: str, tag: str) -> None:
    """Wheels from the lock file built on the host, then an offline `docker build`."""
    wheels, app = DEPLOY / "wheels", DEPLOY / "wheels-app"
    for folder in (wheels, app):
        for old in folder.glob("*.whl"):
            old.unlink()
    pip = [python, "-m", "pip", "wheel", "-q", "--no-deps"]
    sh(*pip, "-r", str(DEPLOY / "requirements.lock"), "-w", str(wheels), timeout=900)
    sh(*pip, str(REPO), "-w", str(app), timeout=300)
    try:
        sh("docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
           "--build-arg", "WHEEL_SOURCE=local", "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(REPO),
           timeout=900, env={**os.environ, "DOCKER_BUILDKIT": "0"})
        keep_dependency_layer(tag)
    finally:
        for folder in (wheels, app):
            for whl in folder.glob("*.whl"):
                whl.unlink()


def keep_dependency_layer(tag: str) -> None:
    """Tag the layer that installed the locked dependencies, so removing the run's image keeps it
    as build cache: the next build with the same lock file and base skips the ~100 s install."""
    lock = hashlib.sha256((DEPLOY / "requirements.lock").read_bytes()).hexdigest()[:12]
    history = sh("docker", "history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}", tag).stdout
    for line in history.splitlines():
        layer, _, created_by = line.partition("\t")
        if layer.startswith("sha256:") and "-r /tmp/build/requirements.lock" in created_by:
            sh("docker", "tag", layer, f"{DEPENDENCY_CACHE}:{lock}")
            return


class Databases:
    """One throwaway database for Dagster's storage (schema dagster_storage) and the app tables."""

    def __init__(self) -> None:
        self.name = f"monolyth_deploy_{uuid.uuid4().hex[:10]}"
        self.created = False

    @property
    def url(self) -> str:
        base = ADMIN_PG_URL.rsplit("/", 1)[0]
        return f"{base}/{self.name}"

    def create(self) -> None:
        with psycopg.connect(ADMIN_PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self) -> None:
        if self.created:
            with psycopg.connect(ADMIN_PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def one(self, sql: str, *params: Any) -> Any:
        found = self.rows(sql, *params)
        return found[0][0] if found else None

    def execute(self, sql: str, *params: Any) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)


class Emulator:
    """`monolyth-connectors emulator serve` on the host, driven over its /_emulator/ API."""

    def __init__(self, cli: str, workdir: Path, accounts: int, drive_files: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "emulator.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [cli, "emulator", "serve", "--port", str(self.port), "--accounts", str(accounts),
             "--drive-files", str(drive_files), "--gmail-threads", "3", "--seed", "20"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_until("the emulator", lambda: self._up(), 60, 0.5)

    def _up(self) -> bool:
        try:
            self.call("GET", "stats")
            return True
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/_emulator/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Compose:
    """deploy/docker-compose.yml as an operator runs it, plus the check's override file."""

    def __init__(self, project: str, env_file: Path, override: Path, env: dict[str, str]) -> None:
        self.base = ["docker-compose", "-p", project, "--env-file", str(env_file),
                     "-f", str(DEPLOY / "docker-compose.yml"), "-f", str(override)]
        self.env = {**os.environ, **env, "MONOLYTH_ENV_FILE": str(env_file)}

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(*self.base, *args, timeout=timeout, check=check, env=self.env)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.base, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env)

    def container_ids(self) -> list[str]:
        return self.run("ps", "-a", "-q", check=False).stdout.split()


class CpuSampler:
    """Samples the cgroup CPU counters of every container each half second; a run container's
    figure is its last sample (it undercounts by at most the last half second)."""

    def __init__(self) -> None:
        self.usage: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        v1 = Path("/sys/fs/cgroup/cpuacct/docker")
        v2 = Path("/sys/fs/cgroup/system.slice")
        while not self._stop.wait(0.5):
            if v1.is_dir():
                for folder in v1.iterdir():
                    try:
                        ns = int((folder / "cpuacct.usage").read_text())
                    except (OSError, ValueError):
                        continue
                    self.usage[folder.name] = max(self.usage.get(folder.name, 0.0), ns / 1e9)
            elif v2.is_dir():
                for folder in v2.glob("docker-*.scope"):
                    try:
                        stat = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines())
                    except (OSError, ValueError):
                        continue
                    cid = folder.name.removeprefix("docker-").removesuffix(".scope")
                    self.usage[cid] = max(self.usage.get(cid, 0.0), int(stat["usage_usec"]) / 1e6)

    def stop(self) -> None:
        self._stop.set()


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="monolyth-deploy-check-"))
