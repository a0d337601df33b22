"""``locard serve`` in a child process on a free local port (end-to-end tests, load checks).

The real server, not an in-process test client: its own event loop, extraction
processes and signal handling, so a check through it sees what a bureau would.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalServer:
    """A running ``locard serve``; its output goes to ``log_path``."""

    process: subprocess.Popen
    base_url: str
    log_path: Path
    _log: IO

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as Ctrl-C would (SIGINT), killing it if it does not exit in ``timeout`` s."""
        self.process.send_signal(signal.SIGINT)
        self._wait(timeout)

    def crash(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        self.process.kill()
        self._wait(30.0)

    def _wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def start_server(store: str | Path, *args: str, log_path: str | Path | None = None,
                 timeout: float = 120.0) -> LocalServer:
    """Start ``locard serve --store STORE`` on 127.0.0.1 and wait until ``/v1/health`` answers 200.

    Parameters
    ----------
    args : str
        More ``locard serve`` options (e.g. ``"--extract-processes", "2"``).
    log_path : path, optional
        Server output; default ``STORE/server-<port>.log``.
    timeout : float
        Seconds to wait for the first healthy answer.

    Raises
    ------
    RuntimeError
        The server exited or did not answer in time (the end of its log is in the message).
    """
    import httpx

    port = free_port()
    log_path = Path(log_path) if log_path else Path(store) / f"server-{port}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "locard", "serve", "--store", str(store), "--host", "127.0.0.1",
                             "--port", str(port), *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = LocalServer(proc, f"http://127.0.0.1:{port}", log_path, log)
    t0 = time.time()
    while True:
        try:
            if httpx.get(f"{server.base_url}/v1/health", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() - t0 > timeout:
            server.crash()
            raise RuntimeError(f"locard serve did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.3)
