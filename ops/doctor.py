"""`make doctor`: every link from Meta to the model, checked in order, one line each with its fix.

    make doctor STACK_NAME=<stack> [PHONE_NUMBER_ID=<id>] [WABA_ID=<id>] [REGION=<region>]
    make doctor                      # the running `make local`
    python -m ops.doctor --state <file>   # a stack a test started (LocalStack.write_state)

Each check prints one line: ✔ passed, ✗ failed (with "Fix: <one sentence>"), ○ not checked
(an earlier ✗ or a missing id says why), ! worth a look (recent error log lines; does not fail).
Exit status 1 when any check failed. Secret values are read to test them and never printed:
every printed line goes through `Redactor`.
"""

from __future__ import annotations

import argparse
import difflib
import hmac
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from local_stack.config import STATE_DIR
from local_stack.logs import readable
from ops.meta import SYSTEM_USER_STEPS, graph_problem, harmless_webhook
from ops.stack import (
    USABLE_STATUSES,
    DeployedStack,
    LocalStackView,
    StackNotFound,
    StackView,
    alarm_is_firing,
)

PASS, FAIL, SKIP, NOTE = "✔", "✗", "○", "!"
STATE_FILE = STATE_DIR / "current.json"
PLACEHOLDER = "SET-ME"
"""How the template's placeholder secret values start (template.yaml, the three secrets)."""
PHONE_FIELDS = (
    "verified_name,display_phone_number,quality_rating,platform_type,throughput,"
    "messaging_limit_tier,account_mode,status"
)
HTTP_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
ERROR_LINES_SHOWN = 3
ERROR_LINE_CHARS = 300
WHERE_PHONE_NUMBER_ID = "Meta app dashboard > WhatsApp > API Setup, 'Phone number ID' (not the number itself)"
WHERE_WABA_ID = "Meta app dashboard > WhatsApp > API Setup, 'WhatsApp Business Account ID'"
ALARM_FIXES = {
    "InboundDeadLetterAlarm": "fix what the inbound dead-letter queue line says, then redrive it",
    "OutboundDeadLetterAlarm": "fix what the outbound dead-letter queue line says, then redrive it",
    "GraphAuthFailureAlarm": "replace the WhatsApp token (see the WhatsApp token line), then redrive",
    "MistralAuthFailureAlarm": "fix the model key or name (see the model line), then redrive",
}
"""Alarm logical id -> what clears it; other alarms say what is wrong in their description."""
TOKEN_LIKE = re.compile(r"\bEAA[A-Za-z0-9]{20,}")
"""Meta access tokens start with EAA: never printed, even when a log line carries one."""


@dataclass
class Line:
    mark: str
    title: str
    text: str
    fix: str = ""
    details: list[str] = field(default_factory=list)

    def render(self) -> list[str]:
        head = f"{self.mark} {self.title}: {self.text}"
        if self.fix:
            head += ("" if head.endswith((".", ":")) else ".") + f" Fix: {self.fix}."
        return [head, *(f"      {detail}" for detail in self.details)]


class Redactor:
    """Replaces every secret value doctor has read (and anything shaped like a Meta token)."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        for variant in (value, value.strip(), json.dumps(value)[1:-1]):
            if len(variant) >= 4:
                self._values.add(variant)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "[secret]")
        return TOKEN_LIKE.sub("[token]", text)


@dataclass
class Secrets:
    """The values that passed their checks (None: missing, placeholder or malformed)."""

    app_secret: str | None = None
    verify_token: str | None = None
    model_key: str | None = None
    graph_token: str | None = None


class Doctor:
    def __init__(self, view: StackView, http: httpx.Client, since: float) -> None:
        self.view = view
        self.http = http
        self.since = since
        self.redact = Redactor()
        self.secrets = Secrets()

    # ------------------------------------------------------------ all checks, in order
    def checks(self) -> Iterator[Line]:
        stack = self.stack_line()
        yield stack
        if stack.mark == FAIL and (self.view.missing_outputs() or not self._has_resources()):
            return
        yield self.webhook_secret_line()
        yield self.text_secret_line("MistralApiKeySecretName", "Model API key secret", "model")
        yield self.text_secret_line("GraphAccessTokenSecretName", "WhatsApp token secret", "graph")
        yield self.handshake_line()
        yield self.signature_line()
        yield self.whatsapp_line()
        yield self.waba_line()
        yield self.model_line()
        yield from self.dead_letter_lines()
        yield from self.alarm_lines()
        yield from self.alarm_email_lines()
        yield from self.error_log_lines()

    def _has_resources(self) -> bool:
        return self.view.status in USABLE_STATUSES | {"RUNNING", "UPDATE_ROLLBACK_COMPLETE"}

    def _aws_cli(self, command: str) -> str:
        return f"aws {command} {self.view.aws_cli_options}".rstrip()

    def _secret_command(self, output: str) -> str:
        secret_id = self.view.outputs[output]
        return self._aws_cli(
            f"secretsmanager put-secret-value --secret-id {secret_id} --secret-string '<value>'"
        )

    # ------------------------------------------------------------ stack
    def stack_line(self) -> Line:
        view = self.view
        title = "Stack"
        events = self._aws_cli(f"cloudformation describe-stack-events --stack-name {view.name}")
        if view.status.endswith("_IN_PROGRESS"):
            return Line(
                FAIL, title, f"{view.name} is being changed ({view.status})", "wait for it, then run again"
            )
        if not self._has_resources():
            return Line(
                FAIL,
                title,
                f"{view.name} is {view.status}",
                f"read why in its events ({events}); a stack in ROLLBACK_COMPLETE must be removed "
                "with sam delete before deploying again",
            )
        missing = view.missing_outputs()
        if missing:
            return Line(
                FAIL,
                title,
                f"{view.name} lacks the outputs {', '.join(missing)}",
                "deploy this version of the template (sam build && sam deploy)",
            )
        if view.status == "UPDATE_ROLLBACK_COMPLETE":
            return Line(
                FAIL,
                title,
                f"{view.name}: the last update failed and was rolled back (the previous version runs)",
                f"read why in its events ({events}), then sam deploy again",
            )
        text = f"{view.name} is {view.status}; WebhookUrl {view.outputs['WebhookUrl']}"
        if view.outputs.get("DashboardUrl"):
            text += f"; dashboard {view.outputs['DashboardUrl']}"
        return Line(PASS, title, text)

    # ------------------------------------------------------------ secrets
    def _read_secret(self, output: str) -> tuple[str | None, str, str]:
        """(value, problem, fix): the secret's string, or why it could not be read."""
        secret_id = self.view.outputs[output]
        try:
            value = self.view.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return None, f"{secret_id} does not exist", "deploy the stack again (sam deploy) to create it"
            if code == "AccessDeniedException":
                return (
                    None,
                    f"your AWS identity may not read {secret_id}",
                    "run make doctor with credentials allowed secretsmanager:GetSecretValue on it",
                )
            return (
                None,
                f"Secrets Manager refused ({code})",
                "check the secret in the Secrets Manager console",
            )
        except KeyError:
            return (
                None,
                f"{secret_id} holds a binary value, not a string",
                f"put the value in as a string: {self._secret_command(output)}",
            )
        except BotoCoreError as error:
            return None, f"Secrets Manager unreachable: {error}", "check the network and run again"
        self.redact.add(value)
        return value, "", ""

    def webhook_secret_line(self) -> Line:
        output, title = "WebhookSecretName", "Webhook secret"
        value, problem, fix = self._read_secret(output)
        if value is None:
            return Line(FAIL, title, problem, fix)
        step = (
            "put the App secret from Meta's app dashboard > App settings > Basic into it "
            "(README, Deploy, step 2)"
        )
        try:
            fields = json.loads(value)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return Line(FAIL, title, 'is not a JSON object {"app_secret": ..., "verify_token": ...}', step)
        bad = [
            key
            for key in ("app_secret", "verify_token")
            if not isinstance(fields.get(key), str) or not fields[key]
        ]
        if bad:
            return Line(FAIL, title, f"lacks {' and '.join(bad)} (a non-empty string each)", step)
        for key in ("app_secret", "verify_token"):
            self.redact.add(fields[key])
        if fields["app_secret"].startswith(PLACEHOLDER):
            return Line(FAIL, title, "app_secret is still the placeholder", step)
        if fields["verify_token"].startswith(PLACEHOLDER):
            return Line(
                FAIL, title, "verify_token is still a placeholder", "set it to a random string: " + step
            )
        self.secrets.app_secret, self.secrets.verify_token = fields["app_secret"], fields["verify_token"]
        return Line(PASS, title, "app_secret and verify_token are filled in")

    def text_secret_line(self, output: str, title: str, kind: str) -> Line:  # noqa: PLR0911 - one per problem
        value, problem, fix = self._read_secret(output)
        if value is None:
            return Line(FAIL, title, problem, fix)
        what = (
            "the Mistral API key (console.mistral.ai > API Keys)" if kind == "model" else "the access token"
        )
        put = f"put {what} in, the plain string: {self._secret_command(output)}"
        key = value.strip()
        if not key:
            return Line(FAIL, title, "is empty", put)
        if key.startswith(PLACEHOLDER):
            return Line(
                FAIL, title, "is still the placeholder", put if kind == "model" else SYSTEM_USER_STEPS
            )
        if key.startswith(("{", "[", '"')):
            return Line(FAIL, title, "holds JSON; the function sends the whole string as the key", put)
        if key.lower().startswith("bearer "):
            return Line(FAIL, title, "starts with 'Bearer ' (the function adds it)", put)
        if any(character.isspace() for character in key):
            return Line(FAIL, title, "contains spaces or line breaks", put)
        if kind == "model":
            self.secrets.model_key = key
        else:
            self.secrets.graph_token = key
        return Line(PASS, title, "filled in")

    # ------------------------------------------------------------ webhook
    def _http(self, method: str, url: str, **kwargs: Any) -> httpx.Response | str:
        """The response, or a one-line description of why there is none."""
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"

    def handshake_line(self) -> Line:
        title = "Meta's verification (GET WebhookUrl)"
        if self.secrets.verify_token is None:
            return Line(SKIP, title, "not checked: the webhook secret is not ready (see above)")
        challenge = str(secrets.randbelow(10**9))
        answer = self._http(
            "GET",
            self.view.outputs["WebhookUrl"],
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": self.secrets.verify_token,
                "hub.challenge": challenge,
            },
        )
        if isinstance(answer, str):
            return Line(
                FAIL, title, f"WebhookUrl unreachable ({answer})", "check the stack's WebhookUrl output"
            )
        if answer.status_code == 200 and answer.text == challenge:
            return Line(
                PASS, title, "the verify token is accepted and the challenge echoed, as Meta requires"
            )
        return Line(
            FAIL, title, f"answered {answer.status_code} {answer.text[:120]!r}", self._webhook_fix(answer)
        )

    def _webhook_fix(self, answer: httpx.Response) -> str:
        wait = self.view.parameters.get("SecretsMaxAgeSeconds", "300")
        if answer.status_code in (401, 403):
            return (
                f"the function still uses the previous secret value: it rereads it within {wait} s "
                "(SecretsMaxAgeSeconds); run make doctor again then"
            )
        if answer.status_code == 500:
            return "the function cannot use the webhook secret: see the WebhookFunction error lines below"
        if answer.status_code == 503:
            return (
                "the function cannot reach Secrets Manager or SQS: see the WebhookFunction error lines below"
            )
        return "check that WebhookUrl is the stack's output (it ends in /webhook)"

    def signature_line(self) -> Line:
        title = "Webhook signature (POST WebhookUrl)"
        if self.secrets.app_secret is None:
            return Line(SKIP, title, "not checked: the webhook secret is not ready (see above)")
        body = harmless_webhook(self.view.phone_number_id or "0", self.view.waba_id or "0")
        digest = hmac.new(self.secrets.app_secret.encode(), body, sha256).hexdigest()
        headers = {"Content-Type": "application/json"}
        signed = self._http(
            "POST",
            self.view.outputs["WebhookUrl"],
            content=body,
            headers={**headers, "X-Hub-Signature-256": f"sha256={digest}"},
        )
        if isinstance(signed, str):
            return Line(
                FAIL, title, f"WebhookUrl unreachable ({signed})", "check the stack's WebhookUrl output"
            )
        if signed.status_code != 200:
            return Line(
                FAIL,
                title,
                f"a status update signed with the app secret got {signed.status_code} {signed.text[:120]!r}",
                self._webhook_fix(signed),
            )
        received = _json(signed)
        if isinstance(received, dict) and received.get("received", 0) != 0:
            return Line(
                FAIL,
                title,
                f"a status update was taken for {received['received']} message(s) to answer",
                "deploy this version of the stack (sam build && sam deploy)",
            )
        unsigned = self._http("POST", self.view.outputs["WebhookUrl"], content=body, headers=headers)
        if isinstance(unsigned, str) or unsigned.status_code != 401:
            got = unsigned if isinstance(unsigned, str) else unsigned.status_code
            return Line(
                FAIL,
                title,
                f"an unsigned post got {got} instead of 401",
                "deploy the stack again (sam build && sam deploy): the function must refuse unsigned posts",
            )
        return Line(
            PASS,
            title,
            "a status update signed with the app secret got 200 (nothing enqueued), an unsigned one 401",
        )

    # ------------------------------------------------------------ WhatsApp
    def _graph_url(self, path: str) -> str:
        base = self.view.parameters.get("GraphApiBaseUrl", "https://graph.facebook.com").rstrip("/")
        return f"{base}/{self.view.parameters.get('GraphApiVersion', 'v23.0').strip('/')}/{path}"

    def _graph_get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response | str:
        assert self.secrets.graph_token is not None
        return self._http(
            "GET",
            self._graph_url(path),
            params=params,
            headers={"Authorization": f"Bearer {self.secrets.graph_token}"},
        )

    def whatsapp_line(self) -> Line:
        title = "WhatsApp token and phone number"
        if self.secrets.graph_token is None:
            return Line(SKIP, title, "not checked: the WhatsApp token secret is not ready (see above)")
        phone = self.view.phone_number_id
        if not phone:
            return Line(
                FAIL,
                title,
                "no phone number id given",
                f"pass PHONE_NUMBER_ID=<id> ({WHERE_PHONE_NUMBER_ID})",
            )
        answer = self._graph_get(phone, {"fields": PHONE_FIELDS})
        if not isinstance(answer, str) and answer.status_code == 400 and "nonexisting field" in answer.text:
            answer = self._graph_get(phone)  # a field this Graph version dropped: ask for the defaults
        if isinstance(answer, str):
            return Line(FAIL, title, f"Graph unreachable ({answer})", "check GraphApiBaseUrl and the network")
        body = _json(answer)
        if answer.status_code != 200:
            problem, fix = graph_problem(answer.status_code, body, f"phone number id {phone}")
            return Line(FAIL, title, problem, fix)
        return self._phone_number_line(title, phone, body if isinstance(body, dict) else {})

    @staticmethod
    def _phone_number_line(title: str, phone: str, number: dict[str, Any]) -> Line:
        facts = [
            f"{label} {value}"
            for label, value in (
                ("verified name", number.get("verified_name")),
                ("quality", number.get("quality_rating")),
                ("throughput", (number.get("throughput") or {}).get("level")),
                ("messaging tier", number.get("messaging_limit_tier")),
                ("status", number.get("status")),
                ("mode", number.get("account_mode")),
            )
            if value
        ]
        name = f"{number.get('display_phone_number', '')} ({phone})".strip()
        text = f"the token may use {name}: " + (", ".join(facts) or "no details returned")
        platform = number.get("platform_type")
        if platform and platform != "CLOUD_API":
            return Line(
                FAIL,
                title,
                f"{text}; but the number is not registered for the Cloud API (platform_type {platform})",
                f"register it: POST /{phone}/register with messaging_product=whatsapp and a 6-digit pin "
                "(sends fail with error 133010 until then)",
            )
        if number.get("account_mode") == "SANDBOX":
            text += (
                " (a test number: only the numbers in API Setup's recipient list get replies, "
                "error 131030 for others)"
            )
        return Line(PASS, title, text)

    def waba_line(self) -> Line:
        title = "App subscribed to the WhatsApp Business Account"
        if not self.view.waba_id:
            return Line(SKIP, title, f"not checked: pass WABA_ID=<id> ({WHERE_WABA_ID}) to check it")
        if self.secrets.graph_token is None:
            return Line(SKIP, title, "not checked: the WhatsApp token secret is not ready (see above)")
        waba = self.view.waba_id
        answer = self._graph_get(f"{waba}/subscribed_apps")
        if isinstance(answer, str):
            return Line(FAIL, title, f"Graph unreachable ({answer})", "check GraphApiBaseUrl and the network")
        body = _json(answer)
        if answer.status_code != 200:
            problem, fix = graph_problem(answer.status_code, body, f"WhatsApp Business Account {waba}")
            return Line(FAIL, title, problem, fix)
        apps = [
            entry.get("whatsapp_business_api_data", {})
            for entry in (body.get("data", []) if isinstance(body, dict) else [])
            if isinstance(entry, dict)
        ]
        if not apps:
            secret_id = self.view.outputs["GraphAccessTokenSecretName"]
            token = self._aws_cli(
                f"secretsmanager get-secret-value --secret-id {secret_id} --query SecretString --output text"
            )
            return Line(
                FAIL,
                title,
                f"no app gets the webhooks of WhatsApp Business Account {waba}",
                f"subscribe yours: curl -X POST '{self._graph_url(f'{waba}/subscribed_apps')}' "
                f'-H "Authorization: Bearer $({token})"',
            )
        names = ", ".join(f"{app.get('name', '?')} ({app.get('id', '?')})" for app in apps)
        return Line(PASS, title, f"WhatsApp Business Account {waba} sends its webhooks to {names}")

    # ------------------------------------------------------------ model
    def model_line(self) -> Line:  # noqa: PLR0911 - one return per problem, in the order to fix them
        title = "Model API key and model"
        if self.secrets.model_key is None:
            return Line(SKIP, title, "not checked: the model API key secret is not ready (see above)")
        base = self.view.parameters.get("MistralBaseUrl", "").rstrip("/")
        model = self.view.parameters.get("MistralModel", "")
        answer = self._http(
            "GET", f"{base}/models", headers={"Authorization": f"Bearer {self.secrets.model_key}"}
        )
        put = f"put a valid key into the model secret: {self._secret_command('MistralApiKeySecretName')}"
        if isinstance(answer, str):
            return Line(FAIL, title, f"{base} unreachable ({answer})", "check MistralBaseUrl and the network")
        if answer.status_code in (401, 403):
            return Line(FAIL, title, f"key rejected by {base} ({answer.status_code})", put)
        if answer.status_code == 404:
            return Line(
                FAIL,
                title,
                f"{base}/models not found",
                "set MistralBaseUrl to the API root that serves /chat/completions (e.g. https://api.mistral.ai/v1)",
            )
        if answer.status_code != 200:
            return Line(
                FAIL, title, f"{base}/models answered {answer.status_code}", "run make doctor again later"
            )
        body = _json(answer)
        cards = [c for c in (body.get("data", []) if isinstance(body, dict) else []) if isinstance(c, dict)]
        names = {str(c.get("id")): c for c in cards}
        for card in cards:
            names.update({str(alias): card for alias in card.get("aliases") or []})
        if model not in names:
            close = close_models(model, list(names)) or sorted(names)[:5]
            return Line(
                FAIL,
                title,
                f"the key works, but {base} offers no model {model!r}; "
                f"close names: {', '.join(close) or 'none'}",
                "set the parameter MistralModel to one of them (sam deploy --guided, or "
                "LOCAL_PARAMETERS=MistralModel=... locally)",
            )
        if (names[model].get("capabilities") or {}).get("completion_chat") is False:
            return Line(
                FAIL, title, f"{model} does not do chat completions", "choose a chat model for MistralModel"
            )
        return Line(PASS, title, f"the key works and {base} offers {model}")

    # ------------------------------------------------------------ nothing stuck
    def dead_letter_lines(self) -> Iterator[Line]:
        for output, title, what in (
            ("InboundDeadLetterQueueUrl", "Inbound dead-letter queue", "not answered"),
            ("OutboundDeadLetterQueueUrl", "Outbound dead-letter queue", "replies not sent"),
        ):
            url = self.view.outputs[output]
            try:
                attributes = self.view.client("sqs").get_queue_attributes(
                    QueueUrl=url, AttributeNames=["All"]
                )["Attributes"]
            except (ClientError, BotoCoreError) as error:
                yield Line(FAIL, title, f"cannot read {url}: {error}", "check the stack's queue outputs")
                continue
            waiting = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
                attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
            )
            if waiting == 0:
                yield Line(PASS, title, "empty")
                continue
            redrive = self._aws_cli(
                f"sqs start-message-move-task --source-arn {attributes.get('QueueArn', url)}"
            )
            yield Line(
                FAIL,
                title,
                f"{waiting} {'message waits' if waiting == 1 else 'messages wait'} here ({what})",
                f"fix the cause (the lines about alarms and errors say which), then redrive them: {redrive}",
            )

    def alarm_lines(self) -> Iterator[Line]:
        try:
            alarms, source = self.view.alarms()
        except (ClientError, BotoCoreError) as error:
            yield Line(
                FAIL,
                "Alarms",
                f"cannot read them: {error}",
                "use credentials allowed cloudwatch:DescribeAlarms",
            )
            return
        firing = [alarm for alarm in alarms if alarm_is_firing(alarm)]
        if not firing:
            yield Line(PASS, "Alarms", f"none of {len(alarms)} in ALARM ({source})")
        for alarm in firing:
            yield Line(
                FAIL,
                f"Alarm {alarm.logical_id}",
                f"in ALARM: {alarm.description}",
                ALARM_FIXES.get(alarm.logical_id, "its description says what is wrong"),
            )

    def alarm_email_lines(self) -> Iterator[Line]:
        topic = self.view.outputs.get("AlarmTopicArn")
        if not topic:
            return
        title = "Alarm email"
        try:
            pages = (
                self.view.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
            )
            subscriptions = [s for page in pages for s in page.get("Subscriptions", [])]
        except (ClientError, BotoCoreError) as error:
            yield Line(
                FAIL,
                title,
                f"cannot read the subscriptions of {topic}: {error}",
                "check the AlarmEmail parameter",
            )
            return
        pending = [
            s.get("Endpoint", "?") for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"
        ]
        if pending:
            yield Line(
                FAIL,
                title,
                f"{', '.join(pending)} has not confirmed the subscription: alarms are not emailed yet",
                "open the email 'AWS Notification - Subscription Confirmation' and click "
                "'Confirm subscription'",
            )
        else:
            yield Line(
                PASS,
                title,
                "alarms are emailed to " + ", ".join(s.get("Endpoint", "?") for s in subscriptions),
            )

    def error_log_lines(self) -> Iterator[Line]:
        minutes = round((time.time() - self.since) / 60)
        for function in self.view.functions:
            title = f"{function} log"
            try:
                lines = self.view.error_lines(function, self.since, ERROR_LINES_SHOWN)
            except (ClientError, BotoCoreError) as error:
                yield Line(NOTE, title, f"cannot read its error lines: {error}")
                continue
            if not lines:
                yield Line(PASS, title, f"no error lines in the last {minutes} minutes")
                continue
            shown = [_shorten(readable(line)) for line in lines]
            yield Line(
                NOTE,
                title,
                f"error lines in the last {minutes} minutes; the latest {len(shown)}:",
                details=shown,
            )


def close_models(model: str, offered: list[str], limit: int = 4) -> list[str]:
    """Offered names of the same family first (mistral-small-2506 for mistral-small-latest), then alike."""
    family = re.sub(r"-(latest|\d{4})$", "", model)
    same = sorted(name for name in offered if name == family or name.startswith(family + "-"))
    similar = difflib.get_close_matches(model, offered, n=limit, cutoff=0.5)
    return list(dict.fromkeys(same + similar))[:limit]


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_LINE_CHARS else text[: ERROR_LINE_CHARS - 1] + "…"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name", help="a deployed stack (else: the running make local)")
    parser.add_argument("--region", help="the stack's region (default: AWS_REGION, samconfig.toml, profile)")
    parser.add_argument("--phone-number-id", help=WHERE_PHONE_NUMBER_ID)
    parser.add_argument("--waba-id", help=WHERE_WABA_ID)
    parser.add_argument("--state", type=Path, default=STATE_FILE, help="a local stack's state file")
    parser.add_argument(
        "--since-minutes", type=float, default=60.0, help="how far back to look for error lines"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, write: Callable[[str], None], session: Any = None) -> int:
    """Print every check through `write`; the exit status. `session`: a boto3 session to use (tests)."""
    try:
        view: StackView = (
            DeployedStack.open(args.stack_name, args.region, session)
            if args.stack_name
            else LocalStackView.open(args.state)
        )
    except StackNotFound as missing:
        write(Line(FAIL, "Stack", missing.problem, missing.fix).render()[0])
        return 1
    view.phone_number_id = args.phone_number_id or view.phone_number_id
    view.waba_id = args.waba_id or view.waba_id
    write(f"make doctor: {view.description}")
    failed = passed = 0
    if view.local:  # the stand-ins and the local API are on loopback: never through a proxy
        os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        doctor = Doctor(view, http, since=time.time() - args.since_minutes * 60)
        for line in doctor.checks():
            for text in line.render():
                write(doctor.redact(text))
            failed += line.mark == FAIL
            passed += line.mark == PASS
    if failed:
        write(
            f"{failed} of {failed + passed} checks failed: fix the first ✗ first, then run make doctor again."
        )
        return 1
    write(f"All {passed} checks passed.")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv), lambda text: print(text, flush=True))


if __name__ == "__main__":
    sys.exit(main())
