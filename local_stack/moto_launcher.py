"""Runs moto's server (its own process, so it gets its own CPU) with SQS FIFO made faithful and IAM enforced.

The FIFO fixes live in `local_stack.moto_fixes`, IAM in `local_stack.iam_enforcer` (a
middleware around moto's WSGI app, so moto's server is built here rather than through
`moto.server.main`). `MotoServer` starts this module as a child process and waits
until it answers.

Usage: python -m local_stack.moto_launcher <port> [host] [--enforce-iam --iam-events-fd N]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from local_stack import moto_fixes
from local_stack.http_server import reachable_host

ROOT = Path(__file__).resolve().parent.parent


class MotoServerError(Exception):
    """moto's server did not start."""


class MotoServer:
    """A moto server child process on `host:port`, its output in `log_path`.

    With `enforce_iam`, calls signed with a function role's credentials are checked
    against the role (`local_stack.iam_enforcer`); each denial is passed, as one JSON
    line, to `on_iam_event`.
    """

    def __init__(
        self,
        port: int,
        log_path: Path,
        host: str = "127.0.0.1",
        *,
        enforce_iam: bool = False,
        on_iam_event: Callable[[str], None] | None = None,
        load_managed_policies: bool = True,
    ) -> None:
        self.port = port
        self.host = host
        self.log_path = log_path
        self.url = f"http://{reachable_host(host)}:{port}"
        self.enforce_iam = enforce_iam
        self.on_iam_event = on_iam_event
        self.load_managed_policies = load_managed_policies
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> MotoServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "local_stack.moto_launcher", str(self.port), self.host]
        pass_fds: tuple[int, ...] = ()
        events_read = -1
        if self.enforce_iam:
            events_read, events_write = os.pipe()
            command += ["--enforce-iam", "--iam-events-fd", str(events_write)]
            pass_fds = (events_write,)
        # AWS managed policies (AWSLambdaSQSQueueExecutionRole...) exist in moto only when asked for;
        # loading them costs ~1.3 s, so a stack whose roles attach none skips it.
        env = {
            **os.environ,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true" if self.load_managed_policies else "false",
        }
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
            )
        if self.enforce_iam:
            os.close(pass_fds[0])
            threading.Thread(
                target=self._pump, args=(os.fdopen(events_read, "r", encoding="utf-8"),), daemon=True
            ).start()
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

    def _pump(self, events: IO[str]) -> None:
        for line in events:
            if self.on_iam_event is not None and line.strip():
                self.on_iam_event(line)
        events.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack.moto_launcher")
    parser.add_argument("port", type=int)
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("--enforce-iam", action="store_true")
    parser.add_argument("--iam-events-fd", type=int)
    arguments = parser.parse_args(argv)
    moto_fixes.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("MOTO_PORT", str(arguments.port))  # as moto.server.main does
    signal.signal(signal.SIGINT, _exit)
    signal.signal(signal.SIGTERM, _exit)
    # moto.server.main's app, built here so that it can be wrapped.
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple  # noqa: PLC0415

    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True  # type: ignore[attr-defined]
    app: Any = moto_app
    if arguments.enforce_iam:
        from local_stack.cfn import ACCOUNT_ID  # noqa: PLC0415
        from local_stack.iam_enforcer import IamEnforcer  # noqa: PLC0415
        from local_stack.iam_requests import ADMIN_ACCESS_KEY_ID  # noqa: PLC0415

        events = (
            os.fdopen(arguments.iam_events_fd, "w", encoding="utf-8")
            if arguments.iam_events_fd is not None
            else None
        )
        app = IamEnforcer(moto_app, ADMIN_ACCESS_KEY_ID, ACCOUNT_ID, events=events)
    run_simple(arguments.host, arguments.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
