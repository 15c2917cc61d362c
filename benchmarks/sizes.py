"""Deployment size of each built artifact, unzipped and zipped as SAM would upload it."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
"""Packages the Lambda Python runtime already has; bundling them only adds size (and skew)."""


@dataclass(frozen=True)
class ArtifactSize:
    name: str
    files: int
    unzipped_bytes: int
    zipped_bytes: int
    bundled_runtime_packages: tuple[str, ...]


def _files(root: Path, include_bytecode: bool = False) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and (include_bytecode or "__pycache__" not in path.parts)
    )


def runtime_packages_in(root: Path) -> tuple[str, ...]:
    """boto3/botocore/s3transfer found at the top of the artifact or of its python/ dir."""
    found = []
    for base in (root, root / "python"):
        for package in RUNTIME_PROVIDED:
            if (base / package).exists():
                found.append(package)
    return tuple(sorted(set(found)))


def measure_artifact(name: str, root: Path, include_bytecode: bool = False) -> ArtifactSize:
    """Sum of file sizes, and the size of a DEFLATED zip of the same files built in memory.

    __pycache__ is left out unless asked for: running tests or tools may have written it locally,
    but SAM's build output ships none.
    """
    files = _files(root, include_bytecode)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root).as_posix())
    return ArtifactSize(
        name=name,
        files=len(files),
        unzipped_bytes=sum(path.stat().st_size for path in files),
        zipped_bytes=len(buffer.getvalue()),
        bundled_runtime_packages=runtime_packages_in(root),
    )


def largest_packages(layer_python: Path, top: int = 6) -> list[tuple[str, int]]:
    """The layer's biggest top-level entries (bytes, unzipped), to say where the size goes."""
    sizes = []
    for entry in layer_python.iterdir():
        if entry.name.endswith((".dist-info", ".data")) or entry.name == "__pycache__":
            continue
        size = entry.stat().st_size if entry.is_file() else sum(p.stat().st_size for p in _files(entry))
        sizes.append((entry.name, size))
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:top]
