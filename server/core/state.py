"""Logged actor state as pure reducers: `apply(message)` is the only way it changes.

The live server and `llama-land replay` run the same reducers over the same log entries, so their state
digests must agree. Nothing here reads a clock or a socket; time comes from each message's `T`.
Soft state that is not logged (positions between checkpoints) lives in the room simulation, not here.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import msgpack


def canonical(obj: Any) -> Any:
    """Sort map keys recursively so equal states always pack to equal bytes."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def digest(obj: Any) -> str:
    return hashlib.sha256(msgpack.packb(canonical(obj), use_bin_type=True)).hexdigest()


class ActorState:
    kind: ClassVar[str]

    def apply(self, msg: dict[str, Any]) -> None:
        getattr(self, "on_" + msg["Action"])(msg)

    def to_data(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "ActorState":
        state = cls()
        state.__dict__.update(data)
        return state

    def digest(self) -> str:
        return digest(self.to_data())
