"""The desktop client's network side: the asyncio GameClient in a background thread.

The render loop must never wait on a socket and must never be touched from another thread (docs/architecture.md, principle 5), so:
every server event, request result and connection change is put on a queue.Queue that the window drains in
on_update, and the window asks for things with `request()` / `send()`, which return at once. A dropped connection
is retried with backoff, first resuming the session with its token (the avatar waits on the server for its grace
period), then logging in again; the window sees `_Status` events: connecting, online, reconnecting, offline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any

from client.net import GameClient, ServerError

Event = dict[str, Any]


class NetThread:
    def __init__(self, url: str, version: int | None = None):
        self.url, self.version = url, version
        self.events: queue.Queue[Event] = queue.Queue()
        self.status = "offline"
        self.client: GameClient | None = None
        self.credentials: tuple[str, str] | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="llama-land-net", daemon=True)
        self._supervisor: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> "NetThread":
        self.thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _status(self, status: str, detail: str = "") -> None:
        self.status = status
        self.events.put({"Action": "_Status", "Status": status, "Detail": detail})

    # --- called from the window (any thread) -------------------------------------------------------------------

    def login(self, name: str, password: str, register: bool = False,
              invite: str | None = None) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(self._login(name, password, register, invite), self.loop)

    def request(self, action: str, tag: str | None = None, **fields: Any) -> concurrent.futures.Future:
        """Ask the server; the answer (or the Error) also arrives on the queue as {"Action": "_Reply", "Tag": tag,
        "Reply": ...} when a tag is given, so the window handles it in its own thread."""
        future = asyncio.run_coroutine_threadsafe(self._request(action, fields), self.loop)
        if tag is not None:
            future.add_done_callback(lambda f: self.events.put({"Action": "_Reply", "Tag": tag, "Reply": f.result()}))
        return future

    def send(self, action: str, **fields: Any) -> None:
        if self.client is not None:
            asyncio.run_coroutine_threadsafe(self._send(action, fields), self.loop)

    def stop(self) -> None:
        self._stopping = True

        async def close() -> None:
            if self._supervisor is not None:
                self._supervisor.cancel()
            if self.client is not None:
                await self.client.close()

        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=5)
        except Exception:  # the loop may be gone already; nothing left to close
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)

    # --- in the network thread ---------------------------------------------------------------------------------

    async def _connect(self) -> GameClient:
        client = await (GameClient.connect(self.url, version=self.version) if self.version else
                        GameClient.connect(self.url))
        client.listeners.append(self.events.put)
        return client

    async def _login(self, name: str, password: str, register: bool, invite: str | None = None) -> Event:
        """{"Ok": True, "Name": ...} or {"Ok": False, "Code": ..., "Message": ...} — the login screen shows it."""
        self._status("connecting")
        try:
            client = await self._connect()
        except ServerError as exc:  # VERSION_MISMATCH from Hello
            self._status("offline", exc.frame.get("Message", ""))
            return {"Ok": False, "Code": exc.code, "Message": exc.frame.get("Message", "")}
        except (OSError, asyncio.TimeoutError) as exc:
            self._status("offline", str(exc))
            return {"Ok": False, "Code": "UNREACHABLE", "Message": f"cannot reach {self.url}: {exc}"}
        try:
            done = await (client.register(name, password, invite) if register else client.login(name, password))
        except ServerError as exc:
            await client.close()
            self._status("offline")
            return {"Ok": False, "Code": exc.code, "Message": exc.frame.get("Message", "")}
        self.client, self.credentials = client, (name, password)
        self._status("online")
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        return {"Ok": True, "Name": done["Name"]}

    async def _supervise(self) -> None:
        """Wait for the connection to drop; then resume (or log in again) with backoff until it is back."""
        delay = 0.5
        while not self._stopping:
            assert self.client is not None
            await asyncio.shield(self.client.closed)
            if self._stopping:
                return
            self._status("reconnecting")
            token = self.client.token
            while not self._stopping:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
                try:
                    client = await self._connect()
                    try:
                        await client.resume(token)
                    except ServerError:  # the grace period is over: a fresh login
                        await client.login(*self.credentials)  # type: ignore[misc]
                except (OSError, asyncio.TimeoutError, ServerError, ConnectionError):
                    continue
                self.client, delay = client, 0.5
                self._status("online")
                break

    async def _request(self, action: str, fields: dict[str, Any]) -> Event:
        if self.client is None:
            return {"Action": "Error", "Code": "OFFLINE", "Message": "not connected"}
        try:
            return await self.client.request(action, **fields)
        except ServerError as exc:
            return exc.frame
        except (ConnectionError, asyncio.TimeoutError) as exc:
            return {"Action": "Error", "Code": "OFFLINE", "Message": f"no answer: {exc or 'connection lost'}"}

    async def _send(self, action: str, fields: dict[str, Any]) -> None:
        try:
            if self.client is not None:
                await self.client.send(action, **fields)
        except Exception:  # a move lost with the connection: the server's position wins at reconnect
            pass
