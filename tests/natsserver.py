"""A throwaway nats-server on 127.0.0.1 for the tests: a free port, no persistence, stopped at the end. `restart`
stops it and starts it again on the same port (clients reconnect to the same URL). ./dev installs the package."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

from pgcluster import _free_port


def available() -> str | None:
    return None if shutil.which("nats-server") else "nats-server is not installed (./dev installs the nats-server package)"


class NatsServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.store = tempfile.mkdtemp(prefix="llama-land-nats-")  # JetStream's (the directory bucket)
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NatsServer":
        self.proc = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-a", "127.0.0.1", "-p",
                                      str(self.port), "-js", "-sd", self.store], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

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
