"""Every log line of a run: to a JSON-lines file (for tests) and, readable, to the terminal."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

_HIDDEN_KEYS = {
    "level",
    "message",
    "timestamp",
    "service",
    "location",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "sampling_rate",
    "correlation_id",
}


def readable(line: str) -> str:
    """A Powertools JSON log line as one short human line; anything else unchanged."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    if "_aws" in record:  # an EMF metrics blob
        metrics = [
            m["Name"] for d in record["_aws"].get("CloudWatchMetrics", []) for m in d.get("Metrics", [])
        ]
        return "metrics " + " ".join(f"{name}={record.get(name)}" for name in metrics)
    if "message" not in record:
        return line
    extras = {k: v for k, v in record.items() if k not in _HIDDEN_KEYS}
    correlation = record.get("correlation_id")
    text = f"{record.get('level', ''):<7} {record['message']}"
    if correlation:
        text += f"  [{correlation}]"
    if extras:
        text += "  " + json.dumps(extras, default=str, ensure_ascii=False)
    return text


class LogSink:
    """Collects lines from the functions and the stack; thread-safe."""

    def __init__(self, path: Path, echo: bool, stream: IO[str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.echo = echo
        self._file = path.open("a", encoding="utf-8")
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, source: str, line: str, stream: str = "stdout") -> None:
        line = line.rstrip("\n")
        if not line:
            return
        record: dict[str, Any] = {"time": time.time(), "source": source, "stream": stream, "line": line}
        with self._lock:
            if self._file.closed:
                return
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
            if self.echo:
                self._stream.write(f"{source:<18} | {readable(line)}\n")
                self._stream.flush()

    def pump(self, source: str, pipe: IO[bytes], stream: str) -> threading.Thread:
        """Copies a child's output line by line until it closes."""

        def run() -> None:
            for raw in iter(pipe.readline, b""):
                self.emit(source, raw.decode("utf-8", errors="replace"), stream)
            pipe.close()

        thread = threading.Thread(target=run, name=f"log-{source}-{stream}", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            self._file.close()


def recent_lines(path: Path, since: float) -> list[dict[str, Any]]:
    """The LogSink records of a run logged at or after `since` (epoch seconds), oldest first.

    Lines are appended in time order, so the file is read from its end until an older line.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    recent: list[dict[str, Any]] = []
    for raw in reversed(text.splitlines()):
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a line cut short by a crash
        if not isinstance(record, dict):
            continue
        if float(record.get("time", 0)) < since:
            break
        recent.append(record)
    recent.reverse()
    return recent
