"""Secrets from AWS Secrets Manager through Powertools parameters, cached.

A warm function reads each secret at most once per SECRETS_MAX_AGE_SECONDS, so
a rotated value is picked up without a deploy and Secrets Manager is not called
per message. Values are never logged.
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools.utilities import parameters

# botocore logs every response body at DEBUG, GetSecretValue's SecretString included; a
# DEBUG application log level must not print secrets, so botocore stays at INFO or above.
_botocore_logger = logging.getLogger("botocore")
if _botocore_logger.level < logging.INFO:  # NOTSET (inherit, maybe DEBUG) or DEBUG
    _botocore_logger.setLevel(logging.INFO)


def _max_age() -> int:
    return int(os.environ.get("SECRETS_MAX_AGE_SECONDS", "300"))


def secret_text(name: str) -> str:
    """A secret whose value is the plain string (an API key, an access token)."""
    return parameters.get_secret(name, max_age=_max_age()).strip()


def secret_fields(name: str) -> dict[str, str]:
    """A secret whose value is a JSON object of strings."""
    value = parameters.get_secret(name, transform="json", max_age=_max_age())
    if not isinstance(value, dict):
        raise TypeError(f"secret {name} must hold a JSON object")
    return {str(k): str(v) for k, v in value.items()}
