"""boto3 clients, created under one lock.

Creating a client from boto3's default session is not thread-safe (the session's
loaders and credential resolution are shared), and the AI function handles
conversations in threads (`aws.batch`). A created client is safe to share.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

_lock = threading.Lock()


def aws_client(service: str, **kwargs: Any) -> Any:
    """`boto3.client(service, **kwargs)`, one creation at a time (honours AWS_ENDPOINT_URL)."""
    with _lock:
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]
