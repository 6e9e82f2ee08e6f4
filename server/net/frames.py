"""Websocket frames built by hand, for the hot path: a tick is framed once per interest cell, not per player."""

from __future__ import annotations


def ws_binary_frame(payload: bytes) -> bytes:
    """The bytes of one unmasked, unfragmented binary websocket frame (RFC 6455 section 5.2). A server's frames
    are not masked and compression is off, so these bytes are the same for every connection."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return b"\x82\x7e" + n.to_bytes(2, "big") + payload
    return b"\x82\x7f" + n.to_bytes(8, "big") + payload
