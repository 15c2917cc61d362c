"""`python -m ops.conversations`: the operator's view of conversation control.

    python -m ops.conversations [--stack-name NAME [--region R]] list [--opted-out | --all] [--json]
    python -m ops.conversations ... pause CONVERSATION [--hours H] [--reason TEXT]
    python -m ops.conversations ... resume CONVERSATION

With --stack-name, the table comes from the deployed stack's output ConversationTableName
(AWS credentials as for `sam deploy`: profile, environment or SSO); without it, from the
running `make local` (its state file). CONVERSATION is the id a handoff notice shows
(`<phone number id>:<user>`), or the user's phone number or BSUID when one conversation
has it; --phone-number-id names a conversation the table has not seen yet.

`pause` without --hours uses the stack's HandoffPauseHours. `resume` ends a pause now,
whoever started it (the owner's reply, a handoff, an operator); opt-outs are the user's
own decision and are only changed by the user (START).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from local_stack.config import STATE_DIR
from local_stack.topology import moto_client

LAYER = Path(__file__).resolve().parent.parent / "layers" / "wa_assistant"
if str(LAYER) not in sys.path:  # the layer's package, as Lambda finds it on /opt/python
    sys.path.insert(0, str(LAYER))

from wa_assistant.conversation.control_store import ControlStore, Identity  # noqa: E402 - after the path above
from wa_assistant.records import sqs_safe_id  # noqa: E402

STATE_FILE = STATE_DIR / "current.json"
TABLE_OUTPUT = "ConversationTableName"


class OperatorError(Exception):
    """Something the operator must fix; the message says what."""


@dataclass
class Target:
    """The conversation table to work on, and the stack parameters that matter here."""

    store: ControlStore
    description: str
    pause_hours: float


def open_deployed(stack_name: str, region: str | None) -> Target:
    try:
        session = boto3.Session(region_name=region)
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except (NoRegionError, NoCredentialsError) as error:
        raise OperatorError(f"{error}: configure AWS as for `sam deploy` (and pass --region)") from error
    except (ClientError, BotoCoreError) as error:
        raise OperatorError(f"cannot read stack {stack_name}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    if TABLE_OUTPUT not in outputs:
        raise OperatorError(f"stack {stack_name} has no output {TABLE_OUTPUT}: deploy this version first")
    return Target(
        store=ControlStore(outputs[TABLE_OUTPUT], client=session.client("dynamodb")),
        description=f"stack {stack_name} ({session.region_name})",
        pause_hours=float(parameters.get("HandoffPauseHours") or 12),
    )


def open_local(state_path: Path) -> Target:
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OperatorError(
            f"no running local stack ({state_path}: {error}); start `make local` or pass --stack-name"
        ) from error
    table = state.get("outputs", {}).get(TABLE_OUTPUT)
    if not table or not state.get("moto_url"):
        raise OperatorError(f"{state_path} was written by an older local stack: restart `make local`")
    return Target(
        store=ControlStore(table, client=moto_client("dynamodb", state["moto_url"])),
        description=f"the local stack ({state['moto_url']})",
        pause_hours=float(state.get("parameters", {}).get("HandoffPauseHours") or 12),
    )


# ------------------------------------------------------------------ finding a conversation


def resolve(target: Target, given: str, phone_number_id: str | None) -> tuple[str, Identity | None]:
    """The conversation id for an id, a phone number or a BSUID (aliases followed); for a conversation
    the table has not seen, also who it is with (so that `list` shows it and `resume` finds it)."""
    items = {item["conversation_id"]: item for item in target.store.conversations()}
    if given in items:
        found = given
    else:
        wanted = given.removeprefix("+").replace(" ", "")
        matches = [cid for cid, item in items.items() if wanted in (item.get("wa_id"), item.get("user_id"))]
        if phone_number_id is not None:
            matches = [cid for cid in matches if items[cid].get("phone_number_id") == phone_number_id]
        matches = sorted({items[cid].get("alias_of") or cid for cid in matches})
        if len(matches) > 1:
            raise OperatorError(f"{given} has several conversations ({', '.join(matches)}): name one")
        if matches:
            found = matches[0]
        elif phone_number_id is not None:
            number = wanted.isdigit()
            identity = Identity(
                phone_number_id=phone_number_id,
                wa_id=wanted if number else None,
                user_id=None if number else wanted,
            )
            return sqs_safe_id(phone_number_id, wanted), identity
        else:
            raise OperatorError(
                f"no conversation known for {given}: pass the id from the handoff notice, "
                "or --phone-number-id with the user's number or BSUID"
            )
    alias = items.get(found, {}).get("alias_of")
    return (str(alias) if alias else found), None


# ------------------------------------------------------------------ commands


def when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def rows(target: Target, which: str, now: float) -> list[dict[str, Any]]:
    listed = []
    for item in target.store.conversations():
        if item.get("alias_of"):
            continue  # a user's old phone-number key: shown under their BSUID conversation
        paused = float(item.get("paused_until", 0)) > now
        opted_out = bool(item.get("opted_out"))
        if which == "all" or (which == "paused" and paused) or (which == "opted-out" and opted_out):
            listed.append(
                {
                    "conversation": item["conversation_id"],
                    "name": item.get("name"),
                    "phone_number": f"+{item['wa_id']}" if item.get("wa_id") else None,
                    "bsuid": item.get("user_id"),
                    "paused_until": when(float(item["paused_until"])) if paused else None,
                    "paused_by": item.get("paused_by") if paused else None,
                    "pause_reason": item.get("pause_reason") if paused else None,
                    "opted_out": opted_out,
                }
            )
    return sorted(listed, key=lambda row: str(row["conversation"]))


def render(listed: Sequence[dict[str, Any]], which: str, target: Target) -> str:
    if not listed:
        return f"No {'' if which == 'all' else which + ' '}conversations in {target.description}."
    lines = [f"{len(listed)} {'' if which == 'all' else which + ' '}conversation(s) in {target.description}:"]
    for row in listed:
        who = ", ".join(str(part) for part in (row["name"], row["phone_number"], row["bsuid"]) if part)
        state = []
        if row["paused_until"]:
            state.append(f"paused until {row['paused_until']} by {row['paused_by']} ({row['pause_reason']})")
        if row["opted_out"]:
            state.append("opted out")
        lines.append(
            f"  {row['conversation']}  {who or '?'}  {'; '.join(state) or 'answered by the assistant'}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        target = (
            open_deployed(arguments.stack_name, arguments.region)
            if arguments.stack_name
            else open_local(arguments.state)
        )
        now = time.time()
        if arguments.command == "list":
            which = "all" if arguments.all else "opted-out" if arguments.opted_out else "paused"
            listed = rows(target, which, now)
            print(json.dumps(listed, indent=2) if arguments.json else render(listed, which, target))
            return 0
        conversation, identity = resolve(target, arguments.conversation, arguments.phone_number_id)
        if arguments.command == "pause":
            hours = target.pause_hours if arguments.hours is None else arguments.hours
            until = now + hours * 3600
            target.store.pause(
                conversation, until=until, reason=arguments.reason, by="operator", now=now, identity=identity
            )
            print(f"Paused {conversation} until {when(until)}: the assistant stays quiet there.")
        else:
            old_keys = [
                i["conversation_id"]
                for i in target.store.conversations()
                if i.get("alias_of") == conversation
            ]
            for key in [conversation, *old_keys]:  # the user's phone-number key, if it was paused before
                target.store.resume(key, by="operator", now=now)
            print(f"Resumed {conversation}: the assistant answers the next message.")
    except OperatorError as error:
        print(f"ops.conversations: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"ops.conversations: DynamoDB refused: {error}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.conversations",
        description="List, pause and resume the assistant's conversations (human takeover, opt-outs).",
    )
    parser.add_argument("--stack-name", help="a deployed stack (else the running `make local`)")
    parser.add_argument("--region", help="the deployed stack's region (default: your AWS configuration)")
    parser.add_argument("--state", type=Path, default=STATE_FILE, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="paused conversations (default), opted-out ones, or all")
    shown = listing.add_mutually_exclusive_group()
    shown.add_argument("--opted-out", action="store_true", help="users who sent an opt-out keyword")
    shown.add_argument("--all", action="store_true", help="every conversation the table holds state for")
    listing.add_argument("--json", action="store_true", help="JSON instead of text")
    for name, text in (
        ("pause", "keep the assistant quiet in a conversation"),
        ("resume", "let it answer again"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("conversation", help="conversation id, or the user's phone number or BSUID")
        command.add_argument("--phone-number-id", help="the business number, for a conversation not seen yet")
        if name == "pause":
            command.add_argument(
                "--hours", type=float, help="how long (default: the stack's HandoffPauseHours)"
            )
            command.add_argument("--reason", default="paused by an operator", help="shown by `list`")
    return parser


if __name__ == "__main__":
    sys.exit(main())
