"""SNS notices made visible locally: a queue subscribed to every topic, drained into the stack's log.

Deployed, a topic e-mails its subscribers (HandoffEmail); locally nothing leaves the
machine, so the stack subscribes an SQS queue of its own to each of the template's
topics (in moto, as a deployer could) and logs every notice it receives with
source `sns`: `make local` shows it in the terminal, tests read `LocalStack.notices()`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local_stack.topology import STACK_NAME

NOTICE_QUEUE = f"{STACK_NAME}-sns-notices"
POLL_SECONDS = 1


@dataclass(frozen=True)
class Notice:
    topic: str
    """The topic's logical id in template.yaml."""
    subject: str | None
    message: str


class NoticeLog:
    """Subscribes one queue to the topics and drains it in a thread until stopped."""

    def __init__(self, sqs: Any, sns: Any, topics: Mapping[str, str], log: Callable[[str], None]) -> None:
        self._sqs = sqs
        self._topic_ids = {arn: logical_id for logical_id, arn in topics.items()}
        self._log = log
        self._notices: list[Notice] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.url = sqs.create_queue(QueueName=NOTICE_QUEUE)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]
        arn = attributes["QueueArn"]
        for topic_arn in topics.values():
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        self._thread = threading.Thread(target=self._drain, name="sns-notices", daemon=True)

    def start(self) -> NoticeLog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(POLL_SECONDS + 5)

    def notices(self) -> list[Notice]:
        with self._lock:
            return list(self._notices)

    def _drain(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_SECONDS
                ).get("Messages", [])
            except Exception as error:  # moto stopping: the loop ends with the stack
                if not self._stopping.is_set():
                    self._log(f"could not read the notice queue: {type(error).__name__}")
                    self._stopping.wait(POLL_SECONDS)
                continue
            for message in messages:
                envelope = json.loads(message["Body"])  # SNS's JSON envelope (raw delivery off)
                notice = Notice(
                    topic=self._topic_ids.get(envelope.get("TopicArn", ""), envelope.get("TopicArn", "")),
                    subject=envelope.get("Subject"),
                    message=envelope.get("Message", ""),
                )
                with self._lock:
                    self._notices.append(notice)
                line = {"topic": notice.topic, "subject": notice.subject, "message": notice.message}
                self._log(json.dumps(line, ensure_ascii=False))
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
