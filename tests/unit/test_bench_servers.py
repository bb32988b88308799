"""The servers a benchmark starts end with it, however it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ponder.bench.servers import free_port

PARENT = """
import sys
from ponder.bench.servers import launched
pid_file, port = sys.argv[1], int(sys.argv[2])
# A server that never answers /health: the benchmark waits for it.
child = [sys.executable, "-c",
         f"import os, time; open({pid_file!r}, 'w').write(str(os.getpid())); time.sleep(600)"]
with launched("never-healthy", child, port, "model"):
    pass
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_sigterm_to_the_benchmark_stops_a_server_still_starting(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pid_file), str(free_port())])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    server = int(pid_file.read_text())
    try:
        assert _alive(server)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server)
    finally:
        if _alive(server):  # a failed run does not leave it behind either
            os.kill(server, signal.SIGKILL)
