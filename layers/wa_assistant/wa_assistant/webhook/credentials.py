"""The webhook's two secrets, read from one Secrets Manager secret (cached, never logged)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wa_assistant.aws.secrets import secret_fields


class WebhookSecretInvalid(Exception):  # noqa: N818 - it names the misconfiguration
    """The secret lacks a field; a deploy/operator problem, not a request problem."""


@dataclass(frozen=True, slots=True)
class WebhookCredentials:
    app_secret: str = field(repr=False)
    """Meta app secret: the HMAC key of X-Hub-Signature-256."""
    verify_token: str = field(repr=False)
    """Shared with Meta's dashboard for the subscription handshake."""


def load_webhook_credentials(secret_name: str) -> WebhookCredentials:
    """Read `{"app_secret": ..., "verify_token": ...}`; names a missing field, never a value."""
    fields = secret_fields(secret_name)
    missing = [name for name in ("app_secret", "verify_token") if not fields.get(name)]
    if missing:
        raise WebhookSecretInvalid(f"secret {secret_name} lacks {', '.join(missing)}")
    return WebhookCredentials(app_secret=fields["app_secret"], verify_token=fields["verify_token"])
