"""(Re)sign API Gateway HTTP API event files in place, as Meta would sign their bodies.

Usage: python scripts/sign_event.py events/webhook_post_text.json [more.json ...]
           [--app-secret local-app-secret]

Sets headers["x-hub-signature-256"] (lowercase, as API Gateway delivers it) to
sha256=HMAC-SHA256(app secret, raw body), the raw body being the base64-decoded
body when isBase64Encoded is true. Run it after editing an event's body. The
default secret is the LOCAL DEVELOPMENT one, never a real app secret.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

LOCAL_APP_SECRET = "local-app-secret"  # noqa: S105 - the documented local development secret
HEADER = "x-hub-signature-256"


def sign_event(event: dict[str, Any], app_secret: str) -> dict[str, Any]:
    """The event with its signature (and content-length) recomputed over the raw body bytes."""
    body = str(event.get("body") or "")
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    signature = "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != HEADER}
    if "content-length" in headers:
        headers["content-length"] = str(len(raw))
    headers[HEADER] = signature
    return {**event, "headers": headers}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("events", nargs="+", type=Path)
    parser.add_argument("--app-secret", default=LOCAL_APP_SECRET)
    args = parser.parse_args()
    for path in args.events:
        event = json.loads(path.read_text())
        signed = sign_event(event, args.app_secret)
        path.write_text(json.dumps(signed, indent=2, ensure_ascii=False) + "\n")
        print(f"{path}: {signed['headers'][HEADER]}")


if __name__ == "__main__":
    main()
