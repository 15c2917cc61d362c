"""`make local`: the stack in the foreground until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from local_stack.config import STATE_DIR
from local_stack.stack import LocalStack

STATE_FILE = STATE_DIR / "current.json"
"""Where `make chat`, `make doctor` and `make conversations` find the running stack.

LocalStack.state(): never its secrets."""


def banner(stack: LocalStack) -> str:
    assert stack.topology is not None
    parameters = stack.topology.parameters
    mistral = parameters["MistralBaseUrl"]
    graph = parameters["GraphApiBaseUrl"]
    lines = [
        "Local stack ready (moto " + stack.moto_url + ")",
        f"  Mistral : {mistral}/chat/completions  model {parameters['MistralModel']}"
        + ("  [built-in stand-in]" if mistral == stack.mistral.base_url else ""),
        f"  Graph   : {graph}/{parameters['GraphApiVersion']}/<phone_number_id>/messages"
        + ("  [built-in sink, prints each message]" if graph == stack.sink.base_url else ""),
        "  Secrets : app secret, verify token, access token and API key from the environment or their "
        "local defaults (see README.md, Run it locally)",
        "  IAM     : each function calls AWS with its own role from template.yaml; a call its role does "
        "not allow fails with AccessDenied and shows here as `iam | AccessDenied: ...`",
        f"  Logs    : {stack.logs.path}",
        "  Try     : make chat   (in another terminal); make doctor checks every link",
        f"Webhook URL: {stack.webhook_url}",
    ]
    return "\n".join(lines)


def main() -> int:
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("Starting the local stack from template.yaml...", flush=True)
    with LocalStack(env=os.environ, echo_logs=True) as stack:
        stack.write_state(STATE_FILE)
        print(banner(stack), flush=True)
        while not stopping.wait(0.5):
            pass
        print("Stopping...", flush=True)
    STATE_FILE.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
