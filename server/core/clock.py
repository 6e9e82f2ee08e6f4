"""The clock: the one place the server reads the wall time.

Handlers never call this: the edges (a connection receiving a request, a ticker, the composition root opening
actors) stamp each message with `T`, and everything downstream uses the message's time, so replay and tests
see exactly what the live server saw.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return int(time.time() * 1000)
