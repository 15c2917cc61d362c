"""The local stack's configuration: environment variables, each with a local default."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
STATE_DIR = ROOT / ".local-stack"

DEFAULT_PORT = 3000
DEFAULT_APP_SECRET = "local-app-secret"  # noqa: S105 - a documented local-only default
DEFAULT_VERIFY_TOKEN = "local-verify-token"  # noqa: S105
DEFAULT_ACCESS_TOKEN = "local-access-token"  # noqa: S105
DEFAULT_MISTRAL_API_KEY = "local-mistral-key"
REAL_MISTRAL_BASE_URL = "https://api.mistral.ai/v1"
STAND_IN = "stand-in"
"""MISTRAL_BASE_URL / GRAPH_API_BASE_URL value that asks for the built-in stand-in explicitly."""

PARAMETER_ENV_VARS = {
    "MISTRAL_BASE_URL": "MistralBaseUrl",
    "MISTRAL_MODEL": "MistralModel",
    "GRAPH_API_BASE_URL": "GraphApiBaseUrl",
    "GRAPH_API_VERSION": "GraphApiVersion",
}
"""Environment variables that set a template parameter of the same meaning."""


def parse_parameter_overrides(text: str) -> dict[str, str]:
    """`Key=Value Key2=Value2` (as `sam deploy --parameter-overrides`), also comma-separated."""
    overrides: dict[str, str] = {}
    for item in text.replace(",", " ").split():
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"LOCAL_PARAMETERS: {item!r} is not Key=Value")
        overrides[key] = value
    return overrides


@dataclass(frozen=True)
class LocalConfig:
    port: int = DEFAULT_PORT
    app_secret: str = DEFAULT_APP_SECRET
    verify_token: str = DEFAULT_VERIFY_TOKEN
    access_token: str = DEFAULT_ACCESS_TOKEN
    mistral_api_key: str = DEFAULT_MISTRAL_API_KEY
    real_mistral_key: bool = False
    """MISTRAL_API_KEY was set: talk to the real API unless MISTRAL_BASE_URL says otherwise."""
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    """Template parameters from the environment (MISTRAL_MODEL...) and LOCAL_PARAMETERS."""

    def secret_values(self) -> dict[str, str]:
        """The secrets' values, keyed by the variable through which each function reads the secret's name."""
        return {
            "WEBHOOK_SECRET_NAME": json.dumps(
                {"app_secret": self.app_secret, "verify_token": self.verify_token}
            ),
            "MISTRAL_SECRET_NAME": self.mistral_api_key,
            "GRAPH_SECRET_NAME": self.access_token,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LocalConfig:
        overrides = parse_parameter_overrides(env.get("LOCAL_PARAMETERS", ""))
        for variable, parameter in PARAMETER_ENV_VARS.items():
            if env.get(variable) and env[variable] != STAND_IN:
                overrides[parameter] = env[variable]
        key = env.get("MISTRAL_API_KEY", "")
        if key and "MistralBaseUrl" not in overrides and env.get("MISTRAL_BASE_URL") != STAND_IN:
            overrides["MistralBaseUrl"] = REAL_MISTRAL_BASE_URL
        return cls(
            port=int(env.get("LOCAL_PORT") or DEFAULT_PORT),
            app_secret=env.get("WHATSAPP_APP_SECRET") or DEFAULT_APP_SECRET,
            verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or DEFAULT_VERIFY_TOKEN,
            access_token=env.get("WHATSAPP_ACCESS_TOKEN") or DEFAULT_ACCESS_TOKEN,
            mistral_api_key=key or DEFAULT_MISTRAL_API_KEY,
            real_mistral_key=bool(key),
            parameter_overrides=overrides,
        )
