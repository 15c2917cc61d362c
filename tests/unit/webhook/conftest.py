"""Fixtures of the webhook tests (defined in harness.py, which the tests also import helpers from)."""

from tests.unit.webhook.harness import aws_env, captured_logs, webhook

__all__ = ["aws_env", "captured_logs", "webhook"]
