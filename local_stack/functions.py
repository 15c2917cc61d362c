"""Lambda's execution model for one function: warm worker processes, timeouts, crashes.

Each worker is a separate process with its own module state (a warm container).
An invocation that outlives the function's Timeout kills its worker, as Lambda
does; the next invocation starts a fresh one (a cold start).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_stack.logs import LogSink
from local_stack.topology import ACCOUNT_ID, REGION, STACK_NAME, FunctionSpec

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
INIT_TIMEOUT_SECONDS = 60.0
"""Lambda allows 10 s of init; a loaded 2-core CI machine needs more to import Powertools."""


class InvocationError(Exception):
    """The invocation did not return a result (the event source treats it as a failure)."""


class FunctionError(InvocationError):
    """The handler raised (or could not be imported)."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = dict(error)


class InvocationTimeout(InvocationError):  # noqa: N818 - named like Lambda's "Task timed out"
    """The handler ran past the function's Timeout; its worker was killed."""


class WorkerDied(InvocationError):  # noqa: N818 - it names what happened
    """The worker process ended mid-invocation (killed by a test, or crashed)."""


class Worker:
    """One warm container of a function."""

    def __init__(
        self, spec: FunctionSpec, environment: Mapping[str, str], logs: LogSink, number: int
    ) -> None:
        self.spec = spec
        self.name = f"{spec.logical_id}#{number}"
        self.busy = False
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        bootstrap = {
            "function_name": f"{STACK_NAME}-{spec.logical_id}",
            "function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK_NAME}-{spec.logical_id}",
            "memory_mb": spec.memory_mb,
            "handler": spec.handler,
            "code_uri": str(spec.code_uri),
            "layer_paths": [str(p) for p in spec.layer_paths],
            "request_fd": request_read,
            "response_fd": response_write,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(WORKER_SCRIPT), json.dumps(bootstrap)],
            env=dict(environment),
            cwd=spec.code_uri,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(request_read, response_write),
        )
        os.close(request_read)
        os.close(response_write)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        logs.pump(spec.logical_id, self.process.stdout, "stdout")
        logs.pump(spec.logical_id, self.process.stderr, "stderr")
        self._buffer = b""
        self._ready = False

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InvocationTimeout(f"{self.name} timed out")
            readable, _, _ = select.select([self._response_read], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self._response_read, 65536)
            if not chunk:
                raise WorkerDied(f"{self.name} exited with {self.process.poll()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def wait_ready(self) -> None:
        if self._ready:
            return
        message = self._read_message(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if "init_error" in message:
            raise FunctionError(message["init_error"])
        self._ready = True

    def invoke(self, event: Any) -> Any:
        self.wait_ready()
        request_id = str(uuid.uuid4())
        timeout = float(self.spec.timeout_seconds)
        request = {
            "id": request_id,
            "request_id": request_id,
            "deadline": time.time() + timeout,
            "event": event,
        }
        try:
            os.write(self._request_write, (json.dumps(request) + "\n").encode())
        except OSError as exc:
            raise WorkerDied(f"{self.name} is gone: {exc}") from exc
        message = self._read_message(time.monotonic() + timeout)
        if "error" in message:
            raise FunctionError(message["error"])
        return message.get("result")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        for fd in (self._request_write, self._response_read):
            with contextlib.suppress(OSError):  # already closed by an earlier kill
                os.close(fd)


class FunctionRuntime:
    """The warm workers of one function, up to `max_workers` at once."""

    def __init__(
        self, spec: FunctionSpec, environment: Mapping[str, str], logs: LogSink, max_workers: int
    ) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self.logs = logs
        self.max_workers = max_workers
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._numbers = 0
        self._cond = threading.Condition()
        self._closed = False
        self.invocations = 0
        self.in_flight = 0

    def _acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise InvocationError("the local stack is stopping")
                if self._idle:
                    worker = self._idle.pop()
                    break
                if len(self._all) < self.max_workers:
                    self._numbers += 1
                    worker = Worker(self.spec, self.environment, self.logs, self._numbers)
                    self._all.append(worker)
                    break
                self._cond.wait()
            worker.busy = True
            self.in_flight += 1
            return worker

    def _release(self, worker: Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._cond:
            worker.busy = False
            self.in_flight -= 1
            self.invocations += 1
            if healthy and not self._closed:
                self._idle.append(worker)
            elif worker in self._all:
                self._all.remove(worker)
            self._cond.notify_all()

    def invoke(self, event: Any) -> Any:
        worker = self._acquire()
        try:
            result = worker.invoke(event)
        except FunctionError as error:
            # An init error leaves no container behind; a handler error keeps it warm.
            self._release(worker, healthy=worker.process.poll() is None and "init_error" not in str(error))
            raise
        except InvocationTimeout:
            self.logs.emit(
                "local-stack",
                f"{self.spec.logical_id}: Task timed out after "
                f"{self.spec.timeout_seconds} seconds; worker killed",
            )
            self._release(worker, healthy=False)
            raise
        except BaseException:
            self._release(worker, healthy=False)
            raise
        self._release(worker, healthy=True)
        return result

    def prewarm(self) -> None:
        """Start one worker and wait for its init, so the first request is warm."""
        worker = self._acquire()
        try:
            worker.wait_ready()
        except InvocationError as error:
            self.logs.emit("local-stack", f"{self.spec.logical_id}: init failed: {error}", "stderr")
            self._release(worker, healthy=False)
            return
        self._release(worker, healthy=True)
        with self._cond:
            self.invocations -= 1  # starting a container is not an invocation

    def kill_busy_worker(self) -> bool:
        """Kill one worker that is running an invocation (a crash mid-batch)."""
        with self._cond:
            busy = [w for w in self._all if w.busy]
        if not busy:
            return False
        busy[0].process.send_signal(signal.SIGKILL)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._cond.notify_all()
        for worker in workers:
            worker.kill()
