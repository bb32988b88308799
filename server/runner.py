"""Running the app under uvicorn, with the process behaviour an operator and
a supervisor (Docker's restart policy, systemd, Kubernetes) rely on:

* SIGTERM (or Ctrl-C) drains: new requests get 503 with ``Retry-After`` and
  ``/health`` turns 503, the requests in flight finish for up to
  ``--shutdown-timeout`` seconds, those left are answered with an error (a
  stream: an error chunk, then ``[DONE]``), and only then does the HTTP
  server stop and the engine shut down; the process exits 0. A second
  signal cuts the wait short.
* When the engine dies, the requests in flight fail with a clean 503, and
  the process exits with status 1 a few seconds later, so the supervisor
  starts a fresh one (uvicorn alone would go on answering 503 for good).
* Either way ponder exits only once its engines' processes have ended
  (waited for, then killed): a supervisor that restarts at once must not
  start a new engine beside the old one's workers, which on a GPU still
  hold its memory.
* A connection must deliver each request (headers and body) within
  ``--request-read-timeout``: uvicorn has no such limit, so a client that
  sends half a header and stalls would hold its connection for as long as
  it liked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import psutil
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ponder.server.config import Settings
from ponder.server.lifecycle import Lifecycle

logger = logging.getLogger(__name__)

ENGINE_DEATH_GRACE_S = 3.0
"""After the engine dies: how long in-flight requests have to answer their
503 before the process exits."""
ABORT_GRACE_S = 5.0
"""After the drain's time is up: how long aborted requests have to send
their error (the HTTP server then closes what is left)."""
EXIT_ENGINE_DIED = 1
ENGINE_EXIT_GRACE_S = 10.0
"""How long the engines' processes have to end on their own (their parent
gone or shut down) before they are killed."""


class RequestReadDeadline(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools) with a deadline for receiving each
    request whole: from when the connection opens, or from the first byte of
    the next request on it, until the end of its body."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._start_deadline()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._deadline = self.loop.call_later(self._read_timeout, self._expire)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            logger.info("closing a connection from %s: no whole request within %ss",
                        self.client, self._read_timeout)
            self.transport.close()


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn as ponder runs it: its address, ponder's logging, and the
    request read deadline."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # ponder's logging (cli.py), with request ids
        http=functools.partial(RequestReadDeadline, read_timeout=settings.request_read_timeout),
        # Ponder drains the requests itself; this is only for the last
        # bytes of the error answers it sends when its time is up.
        timeout_graceful_shutdown=ABORT_GRACE_S,
    )


class PonderServer(uvicorn.Server):
    def __init__(self, app: FastAPI, settings: Settings) -> None:
        super().__init__(uvicorn_config(app, settings))
        self.ponder_app = app
        self.shutdown_timeout = settings.shutdown_timeout
        self.exit_code = 0
        self._ending: asyncio.Task[None] | None = None
        self.engine_processes: list[psutil.Process] = []
        """Every process under ponder once its engines started: an engine
        core killed by the OS leaves its workers to init, so they are
        found here, not among ponder's children at exit."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.engine_processes = engine_processes()

    @property
    def _lifecycle(self) -> Lifecycle:
        return self.ponder_app.state.lifecycle

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Our own handlers, on the loop. uvicorn's would stop the HTTP server
        at once, and afterwards re-raise the signal, killing the process with
        it (status 143) instead of letting it exit 0."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._ending is None:
            logger.info("%s: draining %d request(s) for up to %ss", sig.name,
                        self._in_flight(), self.shutdown_timeout)
            self._ending = asyncio.create_task(self._drain())
        elif not self._lifecycle.aborted.is_set():
            logger.warning("%s again: aborting the requests still running", sig.name)
            self._lifecycle.abort()
        else:
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        engine = getattr(self.ponder_app.state, "engine", None)
        if self._ending is None and engine is not None and engine.errored:
            self._ending = asyncio.create_task(self._after_engine_death())
        return await super().on_tick(counter)

    async def _drain(self) -> None:
        self._lifecycle.drain()
        if not await self._idle_within(self.shutdown_timeout, until_aborted=True):
            if not self._lifecycle.aborted.is_set():
                logger.warning("shutdown timeout: aborting %d request(s)", self._in_flight())
                self._lifecycle.abort()
            await self._idle_within(ABORT_GRACE_S)
        self.should_exit = True

    async def _after_engine_death(self) -> None:
        logger.error("the engine has died: answering in-flight requests with 503, then "
                     "exiting with status %d so that a supervisor restarts ponder",
                     EXIT_ENGINE_DIED)
        self._lifecycle.drain()
        if not await self._idle_within(ENGINE_DEATH_GRACE_S):
            self._lifecycle.abort()
            await self._idle_within(ABORT_GRACE_S)
        self.exit_code = EXIT_ENGINE_DIED
        self.should_exit = True

    def _in_flight(self) -> int:
        service = getattr(self.ponder_app.state, "service", None)
        return service.in_flight if service is not None else 0

    async def _idle_within(self, seconds: float, until_aborted: bool = False) -> bool:
        """Whether every request ended within ``seconds`` (and, with
        ``until_aborted``, before a second signal aborted them)."""
        deadline = time.monotonic() + seconds
        while self._in_flight():
            if time.monotonic() >= deadline or (until_aborted and self._lifecycle.aborted.is_set()):
                return False
            await asyncio.sleep(0.05)
        return True


def serve(settings: Settings) -> int:
    """Serve until SIGTERM or the engine's death; the process's exit status."""
    from ponder.server.app import create_app

    server = PonderServer(create_app(settings), settings)
    server.run()
    end_processes([*server.engine_processes, *engine_processes()], ENGINE_EXIT_GRACE_S)
    if not server.started and server.exit_code == 0:
        return 3  # the app did not start (uvicorn's own status for that)
    return server.exit_code


def engine_processes() -> list[psutil.Process]:
    """Every process under this one but multiprocessing's resource tracker,
    which ends when this process does (it waits on a pipe from it)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "multiprocessing.resource_tracker" not in " ".join(process.cmdline()):
                found.append(process)
    return found


def end_processes(processes: list[psutil.Process], grace_s: float) -> None:
    """Wait up to ``grace_s`` for ``processes`` to end, then kill those left
    and wait for them too."""
    alive = [p for p in processes if p.is_running()]
    if not alive:
        return
    _, alive = psutil.wait_procs(alive, timeout=grace_s)
    if alive:
        logger.warning("killing %d engine process(es) still running after %ss: %s",
                       len(alive), grace_s, ", ".join(str(p.pid) for p in alive))
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=grace_s)
