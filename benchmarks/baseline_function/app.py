"""Cold-start baseline: the smallest handler a Powertools user writes (Logger + one boto3 client).

With tracing on it also creates Powertools' Tracer, as such a user would.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger

logger = Logger()
sqs = boto3.client("sqs")

if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() not in {"1", "true"}:
    from aws_lambda_powertools import Tracer

    tracer = Tracer()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sqs.send_message(QueueUrl=os.environ["INBOUND_QUEUE_URL"], MessageBody="{}")
    return {"statusCode": 200}
