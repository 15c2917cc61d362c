"""Stand-ins for AWS inside one process: fixed secrets, an in-memory queue, a stdout byte counter.

Used by the warm benchmarks, where moto's per-call overhead would drown the
handler's own cost: the measured code is everything the handler does except
the network call itself.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from wa_assistant.aws.queue import MessageQueue

ROOT = Path(__file__).resolve().parent.parent


class FixedSecrets(BaseProvider):
    """Powertools' secrets provider without AWS: the values are given, caching and transforms are kept."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._values = dict(values)
        self.fetches = 0

    def _get(self, name: str, **sdk_options: Any) -> str:
        self.fetches += 1
        return self._values[name]

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError


class RecordingSqs:
    """The two SQS calls the handlers make, answered from memory."""

    def __init__(self) -> None:
        self.sent = 0
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        self.sent += len(Entries)
        return {"Successful": [{"Id": e["Id"], "MessageId": uuid.uuid4().hex} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class ByteCounter(io.TextIOBase):
    """A stdout that keeps only the count of UTF-8 bytes and lines written (log volume)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        self.lines += text.count("\n")
        return len(text)


def load_handler_module(name: str) -> ModuleType:
    """Import functions/<name>/app.py as a fresh module (like tests.support.load_function)."""
    DEFAULT_PROVIDERS.clear()
    path = ROOT / "functions" / name / "app.py"
    module_name = f"bench_{name}_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def replace_queues(module: ModuleType, client: RecordingSqs) -> int:
    """Point every module-level MessageQueue at the recorder; returns how many were replaced."""
    replaced = 0
    for attribute, value in list(vars(module).items()):
        if isinstance(value, MessageQueue):
            setattr(module, attribute, MessageQueue(value.url, client=client))
            replaced += 1
    return replaced


def install_secrets(values: Mapping[str, str]) -> FixedSecrets:
    provider = FixedSecrets(values)
    DEFAULT_PROVIDERS["secrets"] = provider
    return provider
