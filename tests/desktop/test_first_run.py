"""A new user's first run: set-up that shows its progress, and `./dev play` that plays a fresh world with one
command (a local server of its own, stopped when the window closes). Real processes, a real window on Xvfb
driven by real X input (xdotool), a real second client."""

import asyncio
import ctypes
import os
import queue
import re
import shutil
import subprocess
import threading
import time

import pytest

from client.net import GameClient

from conftest import ROOT, run_cli


def lines_of(proc: subprocess.Popen) -> queue.Queue:
    out: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            out.put(line.rstrip("\n"))
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


def wait_line(lines: queue.Queue, pattern: str, seconds: float, seen: list[str]) -> re.Match:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(seen))


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True, timeout=30).stdout.strip()


def xdotool_list(*args: str) -> list[int]:
    """Window ids xdotool finds (none is not an error)."""
    found = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=30).stdout.split()
    return [int(w) for w in found]


class _ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5), ("pad", ctypes.c_long * 12)]


def close_window(window: int) -> None:
    """What a window manager sends when the player clicks the close button: WM_PROTOCOLS / WM_DELETE_WINDOW."""
    x = ctypes.cdll.LoadLibrary("libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x.XFlush.argtypes = x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x.XOpenDisplay(None)
    event = _ClientMessage(type=33, window=window, message_type=x.XInternAtom(dpy, b"WM_PROTOCOLS", 0), format=32)
    event.data[0] = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    x.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
    x.XFlush(dpy)
    x.XCloseDisplay(dpy)


def test_dev_play_serves_a_new_world_locally_until_the_window_closes(display, tmp_path):
    assert run_cli("world", "new", str(tmp_path / "farm")).returncode == 0
    env = {**os.environ, "DISPLAY": display, "XDG_DATA_HOME": str(tmp_path / "data")}
    before = set(xdotool_list("search", "--name", "^Llama Land$"))  # windows of earlier tests, if any
    # As a designer types it, in the folder where the world was made.
    proc = subprocess.Popen([str(ROOT / "dev"), "play", "--world", "farm", "--name", "alice"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen: list[str] = []
    try:
        lines = lines_of(proc)
        url = wait_line(lines, r"serving Farm locally on (ws://127\.0\.0\.1:\d+/)", 180, seen).group(1)
        assert (tmp_path / "data" / "llama-land" / "farm.db").is_file()

        async def register() -> None:
            alice = await GameClient.connect(url)
            await alice.register("alice", "pw-secret")
            await alice.close()

        asyncio.run(register())
        window = None
        for _ in range(100):  # the client's window: a visible one that was not there before it started
            shown = set(xdotool_list("search", "--onlyvisible", "--name", "^Llama Land$")) - before
            if shown:
                window = max(shown)
                break
            time.sleep(0.2)
        assert window is not None, "the client's window never appeared"
        xdotool("windowfocus", "--sync", str(window))
        time.sleep(1.0)  # the login screen is drawn and its name field active
        xdotool("key", "Return")  # name (filled in by --name) -> password
        xdotool("type", "--delay", "30", "pw-secret")
        xdotool("key", "Return")

        async def bob_sees_alice() -> None:
            bob = await GameClient.connect(url)
            await bob.register("bob", "pw-secret")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if "alice" in {e.name for e in bob.view.entities.values()}:
                    await bob.close()
                    return
                await asyncio.sleep(0.2)
            raise AssertionError(f"bob never saw alice: {[e.name for e in bob.view.entities.values()]}")

        asyncio.run(bob_sees_alice())
        close_window(window)
        assert proc.wait(60) == 0, "\n".join(seen)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(OSError):  # the local server went with the window
            import socket
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_first_set_up_shows_its_progress(tmp_path):
    """A fresh virtualenv from a clean clone: pip's cache makes it quick here, and the progress lines still show
    (elapsed time and the step every 10 s, then the total)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    for path in (ROOT / "pyproject.toml", ROOT / "dev"):  # the working tree's set-up, committed or not
        shutil.copy(path, clone / path.name)
    result = subprocess.run([str(clone / "dev"), "setup"], capture_output=True, text=True, timeout=1200,
                            env={**os.environ, "LLAMA_LAND_VENV": str(tmp_path / "venv")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the first time this compiles llama-cpp-python: about 6 minutes" in result.stderr
    assert re.search(r"^dev: +\d+s  \S", result.stderr, re.MULTILINE), result.stderr
    assert re.search(r"^dev: installed in \d+s$", result.stderr, re.MULTILINE), result.stderr
    again = subprocess.run([str(clone / "dev"), "setup"], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "LLAMA_LAND_VENV": str(tmp_path / "venv")})
    assert again.returncode == 0 and "installing" not in again.stderr  # set up once: the second time is quick
