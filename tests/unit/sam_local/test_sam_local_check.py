"""scripts/sam_local_check.py without Docker: the engine's life cycle, the checks, the env file choice."""

from __future__ import annotations

import importlib.util
import json
import socket
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local_stack.services import ENV_JSON, ServiceAddresses
from wa_assistant.records import InboundMessage
from wa_assistant.webhook.digest import digest_webhook
from wa_assistant.webhook.payload import parse_webhook

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sam_local_check", ROOT / "scripts" / "sam_local_check.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sam_local_check"] = module
    spec.loader.exec_module(module)
    return module


def fake_script(path: Path, body: str) -> Path:
    """A stand-in for dockerd.sh / lambda_base_image.sh that records its arguments in calls.log."""
    path.write_text(f'#!/usr/bin/env bash\necho "$(basename "$0") $*" >> "{path.parent}/calls.log"\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_no_container_engine_skips_with_one_clear_line_and_exit_0(
    check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerd = fake_script(
        tmp_path / "dockerd.sh",
        'case "$1" in status) exit 1;; start) echo "dockerd.sh: no container engine: '
        'starting it needs root (no passwordless sudo)" >&2; exit 3;; esac; exit 0',
    )
    monkeypatch.setattr(check, "DOCKERD", dockerd)
    monkeypatch.setattr(check, "BASE_IMAGE", fake_script(tmp_path / "lambda_base_image.sh", "exit 0"))
    assert check.run(tmp_path) == 0
    assert capsys.readouterr().out.splitlines() == [
        "sam-local: skipped: no container engine can start here "
        "(starting it needs root (no passwordless sudo))"
    ]
    assert calls(tmp_path) == ["dockerd.sh status", "dockerd.sh start"]


def test_an_engine_this_run_started_is_stopped_when_a_step_fails(
    check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dockerd = fake_script(
        tmp_path / "dockerd.sh", 'case "$1" in status) exit 1;; bridge-ip) echo 172.17.0.1;; esac; exit 0'
    )
    monkeypatch.setattr(check, "DOCKERD", dockerd)
    monkeypatch.setattr(
        check, "BASE_IMAGE", fake_script(tmp_path / "lambda_base_image.sh", "echo boom; exit 1")
    )
    with pytest.raises(check.CheckError, match="base image failed") as failure:
        check.run(tmp_path)
    assert "boom" in failure.value.details
    assert calls(tmp_path)[-1] == "dockerd.sh stop"


def test_an_engine_that_was_already_running_is_left_running(
    check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dockerd = fake_script(tmp_path / "dockerd.sh", 'case "$1" in bridge-ip) echo 172.17.0.1;; esac; exit 0')
    monkeypatch.setattr(check, "DOCKERD", dockerd)
    monkeypatch.setattr(check, "BASE_IMAGE", fake_script(tmp_path / "lambda_base_image.sh", "exit 1"))
    with pytest.raises(check.CheckError):
        check.run(tmp_path)
    assert "dockerd.sh stop" not in calls(tmp_path)
    assert calls(tmp_path)[-1] == "lambda_base_image.sh "


def test_any_other_dockerd_failure_fails_the_check(
    check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dockerd = fake_script(
        tmp_path / "dockerd.sh", 'case "$1" in status) exit 1;; start) exit 2;; esac; exit 0'
    )
    monkeypatch.setattr(check, "DOCKERD", dockerd)
    with pytest.raises(check.CheckError, match=r"dockerd\.sh start failed"):
        check.run(tmp_path)


def test_expected_inbound_record_is_what_the_webhook_parser_makes_of_the_event(check: ModuleType) -> None:
    event = json.loads((ROOT / "events" / "webhook_post_text.json").read_text())
    expected = check.expected_inbound(event)
    assert isinstance(expected, InboundMessage)
    assert expected.text == "Hello! Do you ship to Zürich? 🙂"
    assert expected.sender.profile_name == "Zoë Local"
    assert digest_webhook(parse_webhook(event["body"].encode())).messages == [expected]


def test_verify_check_needs_status_200_and_the_challenge(check: ModuleType) -> None:
    good: dict[str, Any] = {"statusCode": 200, "body": "1158201444"}
    assert "1158201444" in check.check_verify(good, None)
    with pytest.raises(check.CheckError, match="body"):
        check.check_verify({**good, "body": "nope"}, None)
    with pytest.raises(check.CheckError, match="statusCode 403"):
        check.check_verify({**good, "statusCode": 403}, None)


def test_batch_checks_refuse_item_failures(check: ModuleType) -> None:
    failed = {"batchItemFailures": [{"itemIdentifier": "059f36b4"}]}
    for check_batch in (check.check_ai_reply, check.check_send_reply):
        with pytest.raises(check.CheckError, match="batchItemFailures"):
            check_batch(failed, None)


def test_checked_in_env_json_is_used_only_where_it_matches_the_running_services(
    check: ModuleType, tmp_path: Path
) -> None:
    generated = tmp_path / "env.json"
    generated.write_text(ENV_JSON.read_text())
    assert check.env_file_for(ServiceAddresses(), generated) == ENV_JSON
    assert check.env_file_for(ServiceAddresses("172.18.0.1"), generated) == generated
    generated.write_text("{}\n")
    with pytest.raises(check.CheckError, match="--write-env-json"):
        check.env_file_for(ServiceAddresses(), generated)


def test_summary_is_a_table_of_every_invocation(check: ModuleType) -> None:
    runs = [
        check.Invocation("WebhookFunction", "webhook_get_verify.json", check.check_verify, "200", 5.25, True),
        check.Invocation("AiReplyFunction", "ai_reply_inbound.json", check.check_ai_reply, "exit 1", 7.0),
    ]
    lines = check.summary(runs).splitlines()
    assert lines[0].split() == ["function", "event", "result", "seconds"]
    assert lines[1].split() == ["WebhookFunction", "webhook_get_verify.json", "ok:", "200", "5.2"]
    assert lines[2].split() == ["AiReplyFunction", "ai_reply_inbound.json", "FAILED:", "exit", "1", "7.0"]


def test_taken_default_ports_make_the_check_use_free_ones(
    check: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(check, "DEFAULT_MOTO_PORT", taken)
        assert not check.port_free("127.0.0.1", taken)
        chosen = check.choose_addresses("127.0.0.1")
        ports = {chosen.moto_port, chosen.mistral_port, chosen.graph_port}
        assert chosen.host == "127.0.0.1"
        assert taken not in ports
        assert len(ports) == 3
        assert all(check.port_free("127.0.0.1", port) for port in ports)
    assert check.port_free("127.0.0.1", taken)
