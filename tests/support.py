"""Helpers shared by the tests: load a function's handler as Lambda does, a Lambda context."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
"""Public third-party examples, present in CI beside the clone (read-only, never copied here)."""
STANDIN_TOKEN = "sink-token-123"
STANDIN_KEY = "standin-key-456"
"""What the unit tests' stand-ins accept (fixtures `sink` and `standin`, tests/unit/conftest.py)."""


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py as a fresh module, as a cold Lambda container would.

    Call it after the environment (monkeypatch.setenv) and AWS mocks are in place:
    handlers read their configuration and create clients at import time.
    """
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS  # noqa: PLC0415

    DEFAULT_PROVIDERS.clear()  # a new container starts with an empty secrets cache
    path = ROOT / "functions" / name / "app.py"
    module_name = f"function_{name}_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The attributes of LambdaContext that Powertools reads."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis
