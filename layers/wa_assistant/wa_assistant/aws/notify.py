"""SNS adapter: publish one notice to the operator's topic (e-mailed to HandoffEmail when set)."""

from __future__ import annotations

from typing import Any

from wa_assistant.aws.clients import aws_client


class Notifier:
    """Publishes to one topic; a failure raises, so the caller's message is retried through SQS."""

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    @property
    def client(self) -> Any:
        # Created on first use so that importing a handler stays cheap. Typed Any: the SNS
        # stubs would be one more development dependency for a single call.
        if self._client is None:
            self._client = aws_client("sns")
        return self._client

    def publish(self, subject: str, text: str) -> str:
        """The SNS message id of the notice."""
        response = self.client.publish(TopicArn=self.topic_arn, Subject=subject, Message=text)
        return str(response["MessageId"])
