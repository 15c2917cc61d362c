"""What the benchmarks read: the template's functions, and `-X importtime` output."""

from __future__ import annotations

from benchmarks.cold_start import import_costs
from benchmarks.template_functions import read_functions
from tests.support import ROOT


def test_functions_come_from_the_template_with_globals_and_tracing_switch() -> None:
    functions = {f.logical_id: f for f in read_functions(ROOT / "template.yaml")}
    assert set(functions) == {"WebhookFunction", "AiReplyFunction", "SendReplyFunction"}
    webhook = functions["WebhookFunction"]
    assert (webhook.handler_module, webhook.handler_name) == ("app", "lambda_handler")
    assert webhook.memory_mb > 0
    assert webhook.environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert webhook.environment["INBOUND_QUEUE_URL"].startswith("https://sqs.")
    traced = {f.logical_id: f for f in read_functions(ROOT / "template.yaml", {"TracingEnabled": "true"})}
    assert traced["WebhookFunction"].environment["POWERTOOLS_TRACE_DISABLED"] == "false"


def test_import_costs_sum_self_time_per_top_level_package() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      1500 |       1500 |     pydantic.fields",
            "import time:      2500 |       4000 |   pydantic",
            "import time:       700 |        700 | boto3",
            "some other line",
        ]
    )
    assert import_costs(stderr) == [("pydantic", 4.0), ("boto3", 0.7)]
