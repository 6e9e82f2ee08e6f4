"""`llama-land play --local`: play a world on this machine with one command. If a server for that world already
answers at the client's URL, the client uses it; otherwise a server of its own starts on a free port, with its own
database in the user's data folder, and stops when the window closes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from server.core import protocol


class LocalServerError(Exception):
    """The local server did not come up; the message says why (from its log)."""


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "llama-land"


def world_served_at(url: str, timeout: float = 2.0) -> str | None:
    """The name of the world a server at url serves (its Hello answer), or None if nothing answers there."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=timeout, close_timeout=timeout, compression=None) as ws:
            ws.send(protocol.encode({"Id": "1", "Action": "Hello", "Version": protocol.VERSION}))
            answer = protocol.unpack(ws.recv(timeout=timeout))
    except (OSError, TimeoutError, WebSocketException, ValueError):
        return None
    return answer.get("World") if answer.get("Action") == "Hello-Response" else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """`llama-land serve` for one world in a child process, logging to a file beside its database."""

    def __init__(self, world: Path, world_name: str, port: int | None = None):
        slug = re.sub(r"[^a-z0-9]+", "-", world_name.lower()).strip("-") or "world"
        folder = data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.db = folder / f"{slug}.db"
        self.log_path = folder / f"{slug}.log"
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.world = world
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--world", str(self.world),
                                      "--db", f"sqlite:///{self.db}", "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise LocalServerError(f"the local server stopped (exit code {self.proc.returncode}): "
                                       + " / ".join(tail))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise LocalServerError(f"the local server did not answer within {timeout:g} s (log: {self.log_path})")

    def stop(self) -> None:
        """A clean stop (SIGTERM: the server checkpoints, refunds what it must and snapshots its actors)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
