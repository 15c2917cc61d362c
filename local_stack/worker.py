"""One warm Lambda container: imports a handler once, then serves invocations.

Started by `local_stack.functions` as `python worker.py <spec-json>` with the
function's resolved environment and its CodeUri as working directory (Lambda's
/var/task). Invocations arrive as JSON lines on one inherited file descriptor and
results leave on another, so that stdout and stderr stay the function's own logs,
as in CloudWatch. Standard library only: the function's dependencies come from
its layer, nothing from the local stack leaks into its import path.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import IO, Any


class LambdaContext:
    """The attributes of Lambda's context object, with a real deadline."""

    def __init__(self, spec: dict[str, Any], request_id: str, deadline: float) -> None:
        self.function_name: str = spec["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn: str = spec["function_arn"]
        self.memory_limit_in_mb: int = spec["memory_mb"]
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    # Lambda's import path: the function code first, then each layer; not this file's folder.
    sys.path[:1] = [spec["code_uri"], *spec["layer_paths"]]
    requests = os.fdopen(spec["request_fd"], "r", encoding="utf-8")
    responses = os.fdopen(spec["response_fd"], "w", encoding="utf-8")
    module_name, _, attribute = spec["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:  # an init error is reported, then the container dies
        print(f"[ERROR] Runtime.ImportModuleError: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        _send(responses, {"init_error": _error(exc)})
        sys.exit(1)
    _send(responses, {"ready": True})
    for line in requests:
        request = json.loads(line)
        context = LambdaContext(spec, request["request_id"], request["deadline"])
        try:
            result = handler(request["event"], context)
            reply = json.dumps({"id": request["id"], "result": result})
        except Exception as exc:  # as in Lambda: an exception fails the whole invocation
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            traceback.print_exc()
            reply = json.dumps({"id": request["id"], "error": _error(exc)})
        responses.write(reply + "\n")
        responses.flush()


if __name__ == "__main__":
    main()
