"""Cold start of each built function, laid out as Lambda lays it, against a minimal Powertools handler.

Each sample is a fresh `python3.13 -I -S -B` process whose sys.path holds only the
function's build directory, the layer's `python/` directory and a directory with
boto3/botocore standing in for the runtime's bundled copy (plus, with tracing on,
the X-Ray SDK when the layer does not ship it). `-B` because Lambda's /var/task and
/opt are read-only: only the .pyc files the build ships are used (the layer's
build precompiles them, see layers/wa_assistant/Makefile). Subjects and baseline run interleaved.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.template_functions import FunctionInfo

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "cold_child.py"
BASELINE_DIR = Path(__file__).resolve().parent / "baseline_function"
BASELINE = "Baseline"
RUNTIME_DIR = ROOT / ".build" / "lambda-runtime"
XRAY_DIR = ROOT / ".build" / "bench-xray"
XRAY_PACKAGES = ("aws_xray_sdk", "wrapt")
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"
"""Any AWS call at import fails at once instead of reaching AWS (and fails the sample)."""


class ColdStartError(RuntimeError):
    """A child process could not import its handler."""


def python313() -> Path:
    """The plain interpreter behind the dev venv (no venv site-packages reach the children)."""
    candidate = Path(os.environ.get("BENCH_PYTHON313") or Path(sys.base_prefix) / "bin" / "python3.13")
    if not candidate.exists():
        raise ColdStartError(f"{candidate} not found; set BENCH_PYTHON313 to a Python 3.13 interpreter")
    return candidate


def ensure_runtime_boto3(interpreter: Path) -> str:
    """boto3/botocore in their own directory, like the Lambda runtime's (installed once)."""
    version = importlib.metadata.version("boto3")
    stamp = RUNTIME_DIR / f".boto3-{version}"
    if not stamp.exists():
        installed = subprocess.run(  # noqa: S603 - pip of our own interpreter
            [
                str(interpreter),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
                "--no-warn-script-location",
                "--upgrade",
                "--target",
                str(RUNTIME_DIR),
                f"boto3=={version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            raise ColdStartError(f"pip install boto3=={version} failed:\n{installed.stderr[-2000:]}")
        stamp.touch()
    return version


def layer_has_xray(layer_python: Path) -> bool:
    return (layer_python / "aws_xray_sdk").is_dir()


def ensure_xray_dir() -> Path:
    """Links to the dev venv's X-Ray SDK and wrapt, for the tracing-on run of a layer without them."""
    XRAY_DIR.mkdir(parents=True, exist_ok=True)
    for package in XRAY_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ColdStartError(f"{package} is not installed in the dev venv")
        link = XRAY_DIR / package
        if not link.exists():
            link.symlink_to(Path(spec.origin).parent, target_is_directory=True)
    return XRAY_DIR


@dataclass(frozen=True)
class Subject:
    name: str
    code_dir: Path
    handler_module: str
    handler_name: str
    environment: Mapping[str, str]


@dataclass
class Samples:
    import_ms: list[float] = field(default_factory=list)
    import_cpu_ms: list[float] = field(default_factory=list)
    """CPU time of the import: what the cost model scales (wall time also counts other load)."""
    wall_ms: list[float] = field(default_factory=list)
    modules: list[int] = field(default_factory=list)


def lambda_environment(function: FunctionInfo) -> dict[str, str]:
    """Template variables plus what the Lambda service sets, with fake credentials."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": "/var/task",
        **function.environment,
        # After the template's own (empty) value: an AWS call at import fails the sample at once.
        "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT,
    }


def subjects_for(functions: Sequence[FunctionInfo], build_dir: Path) -> list[Subject]:
    """The baseline (with the first function's environment) and every built function."""
    subjects = [
        Subject(
            name=BASELINE,
            code_dir=BASELINE_DIR,
            handler_module="app",
            handler_name="lambda_handler",
            environment={**lambda_environment(functions[0]), "POWERTOOLS_SERVICE_NAME": "baseline"},
        )
    ]
    subjects.extend(
        Subject(
            name=function.logical_id,
            code_dir=build_dir / function.logical_id,
            handler_module=function.handler_module,
            handler_name=function.handler_name,
            environment=lambda_environment(function),
        )
        for function in functions
    )
    return subjects


def run_child(
    interpreter: Path, subject: Subject, search_path: Sequence[Path], extra_args: Sequence[str] = ()
) -> tuple[dict[str, float], float, str]:
    paths = json.dumps([str(path.resolve()) for path in (subject.code_dir, *search_path)])
    command = [
        str(interpreter),
        "-I",
        "-S",
        "-B",
        *extra_args,
        str(CHILD),
        paths,
        subject.handler_module,
        subject.handler_name,
    ]
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our interpreter, our script
        command, env=dict(subject.environment), capture_output=True, text=True, check=False, cwd="/"
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if completed.returncode != 0:
        raise ColdStartError(f"{subject.name}: import failed:\n{completed.stderr[-3000:]}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result, wall_ms, completed.stderr


def measure(
    interpreter: Path, subjects: Sequence[Subject], search_path: Sequence[Path], rounds: int
) -> dict[str, Samples]:
    """`rounds` samples of each subject, interleaved and rotated so no subject always goes first."""
    samples: dict[str, Samples] = defaultdict(Samples)
    for subject in subjects:  # warm the page cache; not recorded
        run_child(interpreter, subject, search_path)
    for round_index in range(rounds):
        shift = round_index % len(subjects)
        for subject in [*subjects[shift:], *subjects[:shift]]:
            result, wall_ms, _ = run_child(interpreter, subject, search_path)
            entry = samples[subject.name]
            entry.import_ms.append(float(result["import_ms"]))
            entry.import_cpu_ms.append(float(result["import_cpu_ms"]))
            entry.wall_ms.append(wall_ms)
            entry.modules.append(int(result["modules"]))
    return dict(samples)


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_costs(importtime_stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """Self time of `-X importtime` summed per top-level package, biggest first (ms)."""
    per_package: dict[str, float] = defaultdict(float)
    for line in importtime_stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            per_package[match.group(4).split(".")[0]] += int(match.group(1)) / 1000
    return sorted(per_package.items(), key=lambda item: item[1], reverse=True)[:top]


def profile_imports(
    interpreter: Path, subject: Subject, search_path: Sequence[Path]
) -> list[tuple[str, float]]:
    _, _, stderr = run_child(interpreter, subject, search_path, ["-X", "importtime"])
    return import_costs(stderr)
