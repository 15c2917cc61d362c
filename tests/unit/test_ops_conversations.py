"""`python -m ops.conversations` on a moto server (as `make local` runs it) and on a CloudFormation stack."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from local_stack.http_server import free_port
from local_stack.topology import moto_client
from ops.conversations import main
from wa_assistant.conversation.control_store import ControlStore, Identity

NUMBER = "106540352242922"


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Path, ControlStore]]:
    """A moto server holding the table, and the state file `make local` writes for it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = moto_client("dynamodb", url)
        table = f"conversations-{uuid.uuid4().hex}"  # moto servers of one process share their state
        create_table(client, table)
        state = tmp_path / "current.json"
        state.write_text(
            json.dumps(
                {
                    "moto_url": url,
                    "outputs": {"ConversationTableName": table},
                    "parameters": {"HandoffPauseHours": "2"},
                }
            )
        )
        yield state, ControlStore(table, client=client)
    finally:
        server.stop()


def run(state: Path, *arguments: str) -> int:
    return main(["--state", str(state), *arguments])


def test_pause_list_and_resume_a_conversation_by_the_users_number(
    local: tuple[Path, ControlStore], capsys: pytest.CaptureFixture[str]
) -> None:
    state, store = local
    assert run(state, "list") == 0
    assert capsys.readouterr().out.startswith("No paused conversations in the local stack")

    assert run(state, "pause", "+16505551234", "--phone-number-id", NUMBER, "--reason", "VIP customer") == 0
    conversation = f"{NUMBER}:16505551234"
    assert capsys.readouterr().out.startswith(f"Paused {conversation} until ")
    paused = store.conversation(conversation)
    assert (paused.paused_by, paused.pause_reason) == ("operator", "VIP customer")
    assert 2 * 3600 - 5 < paused.paused_until - time.time() <= 2 * 3600  # the stack's HandoffPauseHours

    assert run(state, "list", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["conversation"], row["phone_number"], row["paused_by"], row["opted_out"]) == (
        conversation,
        "+16505551234",
        "operator",
        False,
    )

    assert run(state, "resume", "16505551234") == 0  # found by the number it was paused with
    assert not store.conversation(conversation).paused(time.time())
    assert run(state, "list") == 0
    assert "No paused conversations" in capsys.readouterr().out


def test_users_are_found_by_number_or_bsuid_and_old_number_keys_lead_to_the_bsuid_conversation(
    local: tuple[Path, ControlStore], capsys: pytest.CaptureFixture[str]
) -> None:
    state, store = local
    sheena = Identity(phone_number_id=NUMBER, wa_id="16505551234", user_id="US.1349", name="Sheena")
    now = time.time()
    store.pause(
        "bsuid-conv", until=now + 600, reason="the owner replied", by="owner", now=now, identity=sheena
    )
    store.set_alias("phone-conv", "bsuid-conv", sheena, now)
    store.set_opted_out(
        ["someone"], opted_out=True, message_id="w", identity=Identity(NUMBER, "1555"), now=now
    )

    assert run(state, "list") == 0
    out = capsys.readouterr().out
    assert "bsuid-conv  Sheena, +16505551234, US.1349  paused until" in out
    assert "phone-conv" not in out  # an alias, not a conversation of its own
    assert run(state, "list", "--opted-out") == 0
    assert "someone  +1555  opted out" in capsys.readouterr().out

    for who in ("16505551234", "US.1349", "phone-conv"):
        assert run(state, "resume", who) == 0
        assert capsys.readouterr().out.startswith("Resumed bsuid-conv")


def test_mistakes_get_a_sentence_saying_what_to_do(
    local: tuple[Path, ControlStore], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = local
    assert run(state, "resume", "+19999999999") == 1
    assert "no conversation known for +19999999999" in capsys.readouterr().err
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"pid": 1, "webhook_url": "http://127.0.0.1:3000/webhook"}))
    assert run(old, "list") == 1
    assert "older local stack: restart `make local`" in capsys.readouterr().err
    assert run(tmp_path / "missing.json", "list") == 1
    assert "no running local stack" in capsys.readouterr().err


STACK_TEMPLATE = {
    "Parameters": {"HandoffPauseHours": {"Type": "String", "Default": "0.5"}},
    "Resources": {
        "ConversationTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        }
    },
    "Outputs": {"ConversationTableName": {"Value": {"Ref": "ConversationTable"}}},
}


def test_a_deployed_stack_is_found_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cloudformation.create_stack(StackName="shop", TemplateBody=json.dumps(STACK_TEMPLATE))
        assert (
            main(["--stack-name", "shop", "--region", "eu-west-1", "pause", "x", "--phone-number-id", "1"])
            == 0
        )
        assert "Paused 1:x" in capsys.readouterr().out
        assert main(["--stack-name", "shop", "--region", "eu-west-1", "list"]) == 0
        assert "1 paused conversation(s) in stack shop (eu-west-1)" in capsys.readouterr().out
        assert main(["--stack-name", "nope", "--region", "eu-west-1", "list"]) == 1
        assert "cannot read stack nope" in capsys.readouterr().err
