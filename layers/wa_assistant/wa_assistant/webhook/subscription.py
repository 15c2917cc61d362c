"""Meta's webhook subscription handshake (GET /webhook?hub.mode=subscribe&...)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


class SubscriptionRefused(Exception):  # noqa: N818 - it names the outcome
    """The handshake is refused (403); the reason is one line, safe to log and return."""


def subscription_challenge(query: Mapping[str, str], verify_token: str) -> str:
    """The challenge to echo when the request proves it knows the verify token."""
    mode = query.get("hub.mode")
    if not mode:
        raise SubscriptionRefused("missing hub.mode")
    if mode != "subscribe":
        raise SubscriptionRefused("hub.mode is not 'subscribe'")
    token = query.get("hub.verify_token")
    if not token:
        raise SubscriptionRefused("missing hub.verify_token")
    # Constant time on bytes: compare_digest only takes ASCII str.
    if not verify_token or not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise SubscriptionRefused("wrong hub.verify_token")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise SubscriptionRefused("missing hub.challenge")
    return challenge
