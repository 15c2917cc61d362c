"""Runs moto's server (its own process, so it gets its own CPU) with SQS FIFO made faithful.

The fixes themselves live in `local_stack.moto_fixes`. `MotoServer` starts this module
as a child process and waits until it answers.

Usage: python -m local_stack.moto_launcher <port> [host]
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from local_stack import moto_fixes
from local_stack.http_server import reachable_host

ROOT = Path(__file__).resolve().parent.parent


class MotoServerError(Exception):
    """moto's server did not start."""


class MotoServer:
    """A moto server child process on `host:port`, its output in `log_path`."""

    def __init__(self, port: int, log_path: Path, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.log_path = log_path
        self.url = f"http://{reachable_host(host)}:{port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> MotoServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "local_stack.moto_launcher", str(self.port), self.host],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MotoServerError(f"moto server exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise MotoServerError(f"moto server did not start within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def main() -> None:
    port = sys.argv[1]
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    moto_fixes.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as moto_main  # noqa: PLC0415

    moto_main(["-H", host, "-p", port])


if __name__ == "__main__":
    main()
