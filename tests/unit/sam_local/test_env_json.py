"""events/env.json: what `sam local invoke --env-vars` needs, kept in step with template.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_stack.cfn import TemplateError, load_template, resources_of_type
from local_stack.config import TEMPLATE
from local_stack.services import ENV_JSON, ServiceAddresses, generate_env_json

ADDRESSES = ServiceAddresses()


def test_checked_in_env_json_is_what_the_generator_writes_from_the_template() -> None:
    assert ENV_JSON.read_text(encoding="utf-8") == generate_env_json(ADDRESSES), (
        "events/env.json drifted from template.yaml: run "
        "`.venv/bin/python -m local_stack.services --write-env-json` and commit the result"
    )


def test_env_json_points_every_function_at_the_local_services() -> None:
    env = json.loads(ENV_JSON.read_text(encoding="utf-8"))
    assert set(env) == {"WebhookFunction", "AiReplyFunction", "SendReplyFunction"}
    assert {variables["AWS_ENDPOINT_URL"] for variables in env.values()} == {"http://172.17.0.1:5010"}
    assert env["WebhookFunction"]["INBOUND_QUEUE_URL"] == (
        "http://172.17.0.1:5010/123456789012/wa-local-InboundQueue.fifo"
    )
    assert env["WebhookFunction"]["WEBHOOK_SECRET_NAME"] == "wa-local-WebhookSecret"
    assert env["AiReplyFunction"]["MISTRAL_BASE_URL"] == "http://172.17.0.1:5011/v1"
    assert env["AiReplyFunction"]["SERVICE_WINDOW_HOURS"] == "0"
    assert env["AiReplyFunction"]["DEAD_LETTER_QUEUE_URL"].endswith("/wa-local-InboundDeadLetterQueue.fifo")
    assert env["SendReplyFunction"]["GRAPH_API_BASE_URL"] == "http://172.17.0.1:5012"
    assert env["SendReplyFunction"]["DEAD_LETTER_QUEUE_URL"].endswith(
        "/wa-local-OutboundDeadLetterQueue.fifo"
    )


def test_every_variable_in_env_json_is_declared_by_the_template_so_sam_applies_it() -> None:
    template = load_template(TEMPLATE)
    globals_ = template["Globals"]["Function"]["Environment"]["Variables"]
    env = json.loads(ENV_JSON.read_text(encoding="utf-8"))
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        declared = {**globals_, **resource["Properties"]["Environment"]["Variables"]}
        assert set(env[logical_id]) <= set(declared), logical_id


def test_a_new_variable_that_refers_to_a_resource_appears_in_the_env_file(tmp_path: Path) -> None:
    text = TEMPLATE.read_text(encoding="utf-8").replace(
        "          INBOUND_QUEUE_URL: !Ref InboundQueue\n",
        "          INBOUND_QUEUE_URL: !Ref InboundQueue\n"
        "          AUDIT_QUEUE_URL: !Ref OutboundDeadLetterQueue\n",
    )
    changed = tmp_path / "template.yaml"
    changed.write_text(text, encoding="utf-8")
    env = json.loads(generate_env_json(ServiceAddresses("10.0.0.9", 1, 2, 3), changed))
    assert env["WebhookFunction"]["AUDIT_QUEUE_URL"] == (
        "http://10.0.0.9:1/123456789012/wa-local-OutboundDeadLetterQueue.fifo"
    )
    assert env["AiReplyFunction"]["MISTRAL_BASE_URL"] == "http://10.0.0.9:2/v1"
    assert generate_env_json(ADDRESSES, changed) != ENV_JSON.read_text(encoding="utf-8")


def test_a_template_without_aws_endpoint_url_cannot_be_pointed_at_moto(tmp_path: Path) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert '        AWS_ENDPOINT_URL: ""\n' in text
    changed = tmp_path / "template.yaml"
    changed.write_text(text.replace('        AWS_ENDPOINT_URL: ""\n', ""), encoding="utf-8")
    with pytest.raises(TemplateError, match="AWS_ENDPOINT_URL"):
        generate_env_json(ADDRESSES, changed)
