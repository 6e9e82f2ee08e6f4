"""Throwaway services on 127.0.0.1: a PostgreSQL cluster and a nats-server (with JetStream), for the tests, the
benchmarks and `llama-land cluster up` (a whole spread world on one machine). Nothing here is for production: the
cluster runs with fsync off and both keep their data in a temporary folder, removed when they stop.

PostgreSQL: initdb into the folder, started on a free port, one fresh database per `new_database()`. initdb refuses
to run as root, so as root the cluster runs as the `postgres` user (./dev installs the Debian packages that
provide both). nats-server: `restart` stops it and starts it again on the same port (clients reconnect).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def postgres_available() -> str | None:
    """None if a cluster can be started here, else why not."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL's initdb and pg_ctl are not installed (./dev installs the postgresql package)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="llama-land-pg-"))
        self.port = free_port()
        self.names = itertools.count(1)
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.data = self.dir / "data"

    def _run(self, *cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else list(cmd)
        done = subprocess.run(full, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> "PostgresCluster":
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{next(self.names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def nats_available() -> str | None:
    return None if shutil.which("nats-server") else "nats-server is not installed (./dev installs the nats-server package)"


class NatsServer:
    def __init__(self, monitor: bool = False) -> None:
        self.port = free_port()
        self.store = tempfile.mkdtemp(prefix="llama-land-nats-")  # JetStream's (the directory bucket)
        self.url = f"nats://127.0.0.1:{self.port}"
        self.monitor = free_port() if monitor else None  # its HTTP monitoring port (/varz: message counts)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NatsServer":
        extra = ["-m", str(self.monitor)] if self.monitor else []
        self.proc = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-a", "127.0.0.1", "-p",
                                      str(self.port), "-js", "-sd", self.store, *extra], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

    def varz(self) -> dict:
        """The server's counters (in_msgs, in_bytes, out_msgs, ...): needs monitor=True."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/varz", timeout=5) as resp:
            return json.load(resp)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
