"""`python -m benchmarks` (after `sam build`): every benchmark, then docs/benchmarks.md.

BENCH_QUICK=1 shrinks every sample count (a smoke run of the harness, not a result).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0:0] = [str(ROOT / "layers" / "wa_assistant"), str(ROOT)]  # the layer package, as the tests see it

from benchmarks import bursts, cold_start, cost, end_to_end, media, peer, sizes, warm  # noqa: E402
from benchmarks.machine import describe_machine  # noqa: E402
from benchmarks.payloads import payloads_by_type  # noqa: E402
from benchmarks.report import Assumptions, Report, render  # noqa: E402
from benchmarks.template_functions import read_functions  # noqa: E402

BUILD_DIR = ROOT / ".aws-sam" / "build"
LAYER_ID = "SharedLayer"
OUTPUT = ROOT / "docs" / "benchmarks.md"
CORPUS = ROOT.parent / "shared" / "corpus"
QUICK = os.environ.get("BENCH_QUICK") == "1"


def step(title: str) -> float:
    print(f"[bench] {title}", flush=True)
    return time.perf_counter()


def main() -> int:
    started = time.perf_counter()
    machine = describe_machine()
    if not (BUILD_DIR / LAYER_ID / "python").is_dir():
        print("No .aws-sam/build: run `sam build` first (make bench does).", file=sys.stderr)
        return 2
    template = ROOT / "template.yaml"
    functions = read_functions(template)
    traced = read_functions(template, {"TracingEnabled": "true"})
    layer_python = BUILD_DIR / LAYER_ID / "python"

    step("sizes")
    artifacts = [sizes.measure_artifact(f.logical_id, BUILD_DIR / f.logical_id) for f in functions]
    # The layer's build precompiles bytecode (layers/wa_assistant/Makefile): it ships, so it counts.
    layer = sizes.measure_artifact(LAYER_ID, BUILD_DIR / LAYER_ID, include_bytecode=True)
    layer_top = sizes.largest_packages(layer_python)

    step("cold start (fresh python3.13 -I -S -B per sample)")
    interpreter = cold_start.python313()
    boto3_version = cold_start.ensure_runtime_boto3(interpreter)
    rounds = 3 if QUICK else 20
    search = [layer_python, cold_start.RUNTIME_DIR]
    cold_off = cold_start.measure(interpreter, cold_start.subjects_for(functions, BUILD_DIR), search, rounds)
    xray_in_layer = cold_start.layer_has_xray(layer_python)
    search_traced = search if xray_in_layer else [*search, cold_start.ensure_xray_dir()]
    cold_on = cold_start.measure(
        interpreter, cold_start.subjects_for(traced, BUILD_DIR), search_traced, rounds
    )
    import_profiles = {
        subject.name: cold_start.profile_imports(interpreter, subject, search)
        for subject in cold_start.subjects_for(functions, BUILD_DIR)
    }

    step("warm webhook (in-process, stubbed SQS and secrets)")
    from tests.support import FakeLambdaContext  # noqa: PLC0415

    webhook = next(f for f in functions if f.logical_id == "WebhookFunction")
    warm_env = {**cold_start.lambda_environment(webhook), "PATH": os.environ.get("PATH", "")}
    warm_env.pop("AWS_ENDPOINT_URL")
    warm_result = warm.measure_webhook(warm_env, 1000 if QUICK else 10_000, FakeLambdaContext())

    step("verify + parse vs pywa")
    peer_results = [peer.compare("own set (one body per type)", payloads_by_type(), 50 if QUICK else 500)]
    corpus = peer.corpus_payloads(CORPUS)
    if corpus:
        peer_results.append(peer.compare("shared corpus (well-formed bodies)", corpus, 20 if QUICK else 200))

    step("end to end on the local stack")
    e2e = end_to_end.run(
        users=10 if QUICK else 50,
        messages=40 if QUICK else 500,
        paced_messages=20 if QUICK else 100,
        paced_rate=4.0,
        delay_s=0.3,
        baseline_posts=20 if QUICK else 100,
        timeout_s=600,
    )

    step("voice note latency on the local stack (transcription stand-in at a fixed delay)")
    voice = media.run(
        pairs=10 if QUICK else 40, rate=2.0, chat_delay_s=0.3, transcription_delay_s=0.5, timeout_s=300
    )

    step("bursts and batches on the local stack (AI GB-s per message, one stack per configuration)")
    ai_memory = next(f.memory_mb for f in functions if f.logical_id == "AiReplyFunction")
    burst_result = bursts.run(
        users=6 if QUICK else 16,
        burst=3,
        gap_s=1.5,
        delay_s=1.0,
        windows=[2] if QUICK else [0, 1, 2, 3],
        memory_mb=ai_memory,
        timeout_s=300,
    )

    step("cost model and report")
    assumptions = Assumptions()
    report = Report(
        machine=machine,
        end_machine=describe_machine(),
        interpreter=str(interpreter),
        boto3_version=boto3_version,
        functions=functions,
        artifacts=artifacts,
        layer=layer,
        layer_top=layer_top,
        cold_off=cold_off,
        cold_on=cold_on,
        xray_in_layer=xray_in_layer,
        import_profiles=import_profiles,
        warm=warm_result,
        peers=peer_results,
        e2e=e2e,
        assumptions=assumptions,
        prices=cost.Prices(),
        quick=QUICK,
        runtime_s=0.0,
        voice=voice,
        bursts=burst_result,
    )
    text = render(report, runtime_s=time.perf_counter() - started)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"[bench] wrote {OUTPUT.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
