"""template.yaml for media: the AI function gets every media setting, may read the token, and is alarmed."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.cfn import load_template
from tests.iam_support import FUNCTION_CALLS, build_in_moto
from tests.support import ROOT
from wa_assistant.conversation.answering import AnswerSettings
from wa_assistant.conversation.media_reading import MediaLimits
from wa_assistant.conversation.understanding import UnderstandingSettings


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def ai_function(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["AiReplyFunction"]["Properties"]
    return properties


def test_the_ai_function_gets_every_media_setting_from_the_template(template: dict[str, Any]) -> None:
    """The settings the code builds from the deployed environment are the parameters' defaults."""
    topology = build_in_moto().topology  # the transformed template, as the local stack runs it
    env = topology.functions["AiReplyFunction"].environment
    default = {name: str(p["Default"]) for name, p in template["Parameters"].items()}
    understanding = UnderstandingSettings.from_env(env)
    assert (understanding.transcription, understanding.vision, understanding.ocr) == (True, True, True)
    replies = understanding.replies
    assert (
        replies.fallback,
        replies.media_unavailable,
        replies.media_too_large,
        replies.unsupported_document,
        replies.video,
        replies.unclear_voice_note,
    ) == tuple(
        default[name]
        for name in (
            "FallbackReply",
            "MediaUnavailableReply",
            "MediaTooLargeReply",
            "UnsupportedDocumentReply",
            "VideoReply",
            "UnclearVoiceNoteReply",
        )
    )
    limits = MediaLimits.from_env(env)
    assert (limits.audio, limits.image, limits.sticker, limits.document) == tuple(
        int(default[name])
        for name in ("AudioMaxBytes", "ImageMaxBytes", "StickerMaxBytes", "DocumentMaxBytes")
    )
    assert AnswerSettings.from_env(env).vision_model == default["VisionModel"]
    assert (env["TRANSCRIPTION_MODEL"], env["OCR_MODEL"], env["OCR_MAX_PAGES"]) == (
        default["TranscriptionModel"],
        default["OcrModel"],
        default["OcrMaxPages"],
    )
    assert env["TRANSCRIPTION_LANGUAGE"] == ""  # detected per voice note unless the operator sets one
    assert env["GRAPH_SECRET_NAME"] == topology.arns["GraphAccessTokenSecret"]  # !Ref: the ARN


def test_the_ai_function_may_read_the_whatsapp_token_and_its_refusal_is_alarmed(
    template: dict[str, Any],
) -> None:
    # The role allows exactly the calls of this table (tests/unit/test_function_roles.py).
    assert ("secretsmanager:GetSecretValue", "GraphAccessTokenSecret") in FUNCTION_CALLS["AiReplyFunction"]
    assert ai_function(template)["Environment"]["Variables"]["GRAPH_SECRET_NAME"] == {
        "Ref": "GraphAccessTokenSecret"
    }
    service = ai_function(template)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    alarms = [
        alarm["Properties"]
        for alarm in template["Resources"].values()
        if alarm.get("Type") == "AWS::CloudWatch::Alarm"
        and alarm["Properties"].get("MetricName") == "GraphAuthFailed"
        and alarm["Properties"].get("Dimensions") == [{"Name": "service", "Value": service}]
    ]
    assert len(alarms) == 1
    assert (alarms[0]["Threshold"], alarms[0]["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_size_caps_default_to_whatsapps_limits_and_never_exceed_them(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    whatsapp = {"AudioMaxBytes": 16 * 2**20, "ImageMaxBytes": 5 * 2**20, "StickerMaxBytes": 500 * 1024}
    for name, limit in whatsapp.items():
        assert parameters[name]["Default"] == limit
        assert parameters[name]["MaxValue"] <= limit
    assert (
        parameters["DocumentMaxBytes"]["Default"] < 100 * 2**20
    )  # lower than WhatsApp's: it goes to the model
