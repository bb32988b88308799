"""Where the server is in its life, as the routes see it.

Serving; draining (SIGTERM, or the engine died): new requests get 503 with
``Retry-After`` and ``/health`` says 503 so load balancers look elsewhere,
while the requests in flight go on; aborted (the drain's time is up, or
the engine is gone): the requests still in flight answer an error now, a
stream with an error chunk then ``[DONE]``. The HTTP server that runs the
app (``server/runner.py``) moves it along.
"""

from __future__ import annotations

import asyncio


class Lifecycle:
    def __init__(self) -> None:
        self.draining = False
        self.aborted = asyncio.Event()

    def drain(self) -> None:
        self.draining = True

    def abort(self) -> None:
        self.draining = True
        self.aborted.set()
