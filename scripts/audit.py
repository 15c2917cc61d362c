"""pip-audit on the locked dependencies, with a fallback for mirrors that hide per-release JSON.

pip-audit asks PyPI's per-release JSON (`/pypi/<name>/<version>/json`) for known
vulnerabilities. Some package mirrors (these CI machines' among them) serve only
the project-level JSON, so pip-audit reports every package as "not found".
For those, the project-level JSON still lists the vulnerabilities of the
*latest* release: when the pinned version is the latest, that answer is exact.
Anything that could not be audited either way is named on one line.

Exit status: 1 when any known vulnerability is found, else 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [ROOT / "requirements" / "runtime.lock", ROOT / "requirements" / "dev.lock"]
PYPI_PROJECT_JSON = "https://pypi.org/pypi/{name}/json"


def pip_audit(lock: Path) -> list[dict[str, object]]:
    """Run pip-audit on one lock file and return its per-dependency JSON records."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(lock),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise SystemExit(f"pip-audit failed on {lock.name}: {result.stderr.strip()[-500:]}")
    dependencies: list[dict[str, object]] = json.loads(result.stdout)["dependencies"]
    return dependencies


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (pip-audit omits the version of skipped ones)."""
    found: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            found[canonical(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return found


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def latest_release_vulnerabilities(name: str, version: str) -> list[str] | None:
    """Vulnerability ids of `name==version` when it is the latest release, else None."""
    try:
        with urllib.request.urlopen(PYPI_PROJECT_JSON.format(name=name), timeout=20) as response:  # noqa: S310
            project = json.load(response)
    except OSError:
        return None
    if project["info"]["version"] != version:
        return None
    return [str(v.get("id")) for v in project.get("vulnerabilities") or []]


def main() -> int:
    vulnerable: dict[str, list[str]] = {}
    audited: set[str] = set()
    unaudited: set[str] = set()
    for lock in LOCKS:
        versions = pins(lock)
        for dependency in pip_audit(lock):
            name = str(dependency["name"])
            version = str(dependency.get("version") or versions[canonical(name)])
            pin = f"{name}=={version}"
            if "skip_reason" not in dependency:
                audited.add(pin)
                ids = [str(v["id"]) for v in dependency.get("vulns", [])]  # type: ignore[attr-defined]
            else:
                found = latest_release_vulnerabilities(name, version)
                if found is None:
                    unaudited.add(pin)
                    continue
                audited.add(pin)
                ids = found
            if ids:
                vulnerable[pin] = ids
    for pin, ids in sorted(vulnerable.items()):
        print(f"VULNERABLE {pin}: {', '.join(ids)}")
    print(
        f"pip-audit: {len(audited) + len(unaudited)} locked packages, {len(audited)} audited, "
        f"{len(vulnerable)} with known vulnerabilities"
    )
    if unaudited:
        print(
            f"pip-audit: {len(unaudited)} not audited (pinned release is not the latest and this "
            f"mirror has no per-release JSON): {', '.join(sorted(unaudited))}"
        )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    raise SystemExit(main())
