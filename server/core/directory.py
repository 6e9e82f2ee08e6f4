"""Which process serves what, for routing: a key-value bucket in NATS (JetStream), `<namespace>-directory`.

Each serving process writes one entry per room it owns — `room.<name>` → {"Url", "Owner", "Epoch"} — once it holds
the room's lease, and removes it when it stops; `llama-land cluster status` and (next) the hand-off between room
hosts read it. It is a hint for routing only: the leases in the database decide who owns what, so an entry left by
a killed process is simply overwritten by the one that takes over (with a higher epoch).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import unquote

import nats.errors
import nats.js.errors

from server.core.natsbus import escape_token

log = logging.getLogger("llama_land.directory")

class DirectoryUnavailable(Exception):
    """The NATS server has no JetStream (start it with -js) or did not answer."""


def key_for(kind: str, name: str) -> str:
    return f"{kind}.{escape_token(name, '=')}"


def name_of(key: str) -> tuple[str, str]:
    kind, _, escaped = key.partition(".")
    return kind, unquote(re.sub(r"=([0-9A-F]{2})", lambda m: "%" + m.group(1), escaped))


class Directory:
    def __init__(self, nc: Any, namespace: str):
        self.nc, self.bucket = nc, f"{namespace}-directory"
        self.kv: Any = None

    async def open(self) -> None:
        js = self.nc.jetstream(timeout=2)
        try:
            try:
                self.kv = await js.key_value(self.bucket)
            except nats.js.errors.BucketNotFoundError:
                self.kv = await js.create_key_value(bucket=self.bucket, history=1)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            raise DirectoryUnavailable(f"no directory on NATS ({type(exc).__name__}: {exc}); start nats-server "
                                       f"with -js (JetStream) for one") from None

    async def put(self, kind: str, name: str, value: dict[str, Any]) -> None:
        await self.kv.put(key_for(kind, name), json.dumps(value, sort_keys=True).encode())

    async def delete(self, kind: str, name: str, owner: str) -> None:
        """Remove an entry if it is still this owner's (a takeover's entry stays)."""
        current = await self.get(kind, name)
        if current is not None and current.get("Owner") == owner:
            await self.kv.delete(key_for(kind, name))

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            entry = await self.kv.get(key_for(kind, name))
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return json.loads(entry.value) if entry.value else None

    async def entries(self, kind: str) -> dict[str, dict[str, Any]]:
        try:
            keys = await self.kv.keys()
        except nats.js.errors.NoKeysError:
            return {}
        out = {}
        for key in keys:
            k, name = name_of(key)
            if k == kind:
                value = await self.get(kind, name)
                if value is not None:
                    out[name] = value
        return out
