"""IAM in front of moto: every call a function makes is authorised against its role, as in AWS.

A WSGI middleware around moto's server app, running in the moto process so that it
reads moto's own STS and IAM state. For each request it identifies the caller from the
SigV4 access key: the stack's admin key (the harness acting as CloudFormation and as
the operator) passes unchecked; a key from moto's STS AssumeRole is a function's role
session, and each (action, resource) the call needs (`local_stack.iam_requests`) is
evaluated (`local_stack.iam_policy`) against that role's inline and attached
policies, read live from moto's IAM backend; any other key is refused as AWS refuses
an unknown key. A denial is answered exactly as AWS answers it, recorded, and
written as one JSON line to the event stream the local stack logs.

moto's own enforcement (INITIAL_NO_AUTH_ACTION_COUNT) is not used: it names batch calls
as their own actions, checks DynamoDB and Secrets Manager on "*", answers SQS's JSON
protocol with an XML body, and its matcher has no `?`, case rules or NotResource.
Request signatures are not verified: the question here is what a role may do.

`GET /_local_stack/iam` returns every denial and every distinct allowed
(role, session, action, resource) so far.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, Protocol

from local_stack.iam_policy import NamedPolicy, evaluate
from local_stack.iam_requests import (
    ALWAYS_ALLOWED,
    AwsCall,
    ErrorResponse,
    access_denied,
    aws_call,
    call_targets,
    denial_message,
    invalid_token,
    parse_authorization,
)

STATE_PATH = "/_local_stack/iam"
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class RoleSession:
    role_name: str
    session_name: str
    account_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{self.account_id}:assumed-role/{self.role_name}/{self.session_name}"


@functools.lru_cache(maxsize=1024)
def _document(text: str) -> dict[str, Any]:
    parsed = json.loads(text) if text else {}
    return parsed if isinstance(parsed, dict) else {}


def _as_document(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return _document(str(value))


class Identities(Protocol):
    """Who holds an access key, and what that role may do."""

    def session(self, access_key_id: str, session_token: str | None) -> RoleSession | None: ...

    def policies(self, role_name: str) -> list[NamedPolicy]: ...

    def secret_arn(self, region: str) -> Callable[[str], str]: ...


class MotoIdentities:
    """Role sessions and their policies, read from the moto server's own STS and IAM backends."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def session(self, access_key_id: str, session_token: str | None) -> RoleSession | None:
        from moto.sts.models import sts_backends  # noqa: PLC0415 - the server's backends, loaded by then

        assumed = sts_backends[self.account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
        if assumed is None or assumed.session_token != session_token:
            return None
        return RoleSession(assumed.role_arn.rsplit("/", 1)[-1], assumed.session_name, self.account_id)

    def policies(self, role_name: str) -> list[NamedPolicy]:
        """The role's inline and attached policies, as they are now (a test may change them)."""
        from moto.iam.models import iam_backends  # noqa: PLC0415

        try:
            role = iam_backends[self.account_id]["aws"].get_role(role_name)
        except Exception:  # moto's NotFound: a deleted role allows nothing
            return []
        found = [NamedPolicy(f"{role_name}/{name}", _as_document(doc)) for name, doc in role.policies.items()]
        for arn, policy in role.managed_policies.items():
            version = next((v for v in policy.versions if v.is_default), None)
            if version is not None:
                found.append(NamedPolicy(arn, _as_document(version.document)))
        return found

    def secret_arn(self, region: str) -> Callable[[str], str]:
        def lookup(secret_id: str) -> str:
            from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

            backend = secretsmanager_backends[self.account_id][region]
            for secret in list(backend.secrets.values()):
                arn = str(getattr(secret, "arn", ""))
                if secret_id in (arn, getattr(secret, "name", None)) or (
                    secret_id.startswith("arn:") and arn.startswith(secret_id)
                ):
                    return arn
            if secret_id.startswith("arn:"):
                return secret_id
            return f"arn:aws:secretsmanager:{region}:{self.account_id}:secret:{secret_id}"

        return lookup


class IamEnforcer:
    """The middleware. `events` receives one JSON line per denial (the stack logs them)."""

    def __init__(
        self,
        app: WsgiApp,
        admin_access_key_id: str,
        account_id: str,
        events: IO[str] | None = None,
        identities: Identities | None = None,
    ) -> None:
        self.app = app
        self.admin_access_key_id = admin_access_key_id
        self.account_id = account_id
        self.events = events
        self.identities: Identities = identities or MotoIdentities(account_id)
        self._lock = threading.Lock()
        self.denials: list[dict[str, Any]] = []
        self.allowed: set[tuple[str, str, str, str]] = set()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATE_PATH:
            state = ErrorResponse(200, [("Content-Type", "application/json")], self._state())
            return self._respond(start_response, state)
        credential = parse_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        if credential is None or credential.access_key_id == self.admin_access_key_id:
            return self.app(environ, start_response)
        body = _read_body(environ)
        headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
        if "CONTENT_TYPE" in environ:
            headers["CONTENT-TYPE"] = environ["CONTENT_TYPE"]
        call = aws_call(
            credential,
            headers,
            path=environ.get("PATH_INFO", "/"),
            query_string=environ.get("QUERY_STRING", ""),
            body=body,
            account_id=self.account_id,
        )
        if call is None:
            return self.app(environ, start_response)
        session = self.identities.session(credential.access_key_id, environ.get("HTTP_X_AMZ_SECURITY_TOKEN"))
        if session is None:
            response = invalid_token(call)
            action = f"{call.iam_prefix}:{call.operation}"
            self._record_denial(call, None, action, "*", response.code, "unknown access key or session token")
            return self._respond(start_response, response)
        refusal = self._authorise(call, session)
        if refusal is not None:
            return self._respond(start_response, refusal)
        return self.app(environ, start_response)

    def _authorise(self, call: AwsCall, session: RoleSession) -> ErrorResponse | None:
        policies = self.identities.policies(session.role_name)
        for action, resource in call_targets(call, self.identities.secret_arn(call.region)):
            if action in ALWAYS_ALLOWED:
                continue
            decision = evaluate(policies, action, resource)
            if decision.allowed:
                with self._lock:
                    self.allowed.add((session.role_name, session.session_name, action, resource))
                continue
            message = denial_message(session.arn, action, resource, decision.aws_reason)
            response = access_denied(call, message)
            self._record_denial(call, session, action, resource, response.code, decision.detail, message)
            return response
        return None

    def _record_denial(  # noqa: PLR0917 - one record's fields
        self,
        call: AwsCall,
        session: RoleSession | None,
        action: str,
        resource: str,
        code: str,
        detail: str,
        message: str = "",
    ) -> None:
        record = {
            "time": time.time(),
            "role": session.role_name if session else None,
            "session": session.session_name if session else None,
            "principal": session.arn if session else None,
            "operation": f"{call.service}:{call.operation}",
            "action": action,
            "resource": resource,
            "code": code,
            "detail": detail,
            "message": message or detail,
        }
        with self._lock:
            self.denials.append(record)
            if self.events is not None:
                self.events.write(json.dumps(record) + "\n")
                self.events.flush()

    def _state(self) -> bytes:
        with self._lock:
            state = {"denials": list(self.denials), "allowed": sorted(self.allowed)}
        return json.dumps(state).encode()

    @staticmethod
    def _respond(start_response: Callable[..., Any], response: ErrorResponse) -> list[bytes]:
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Error')}", headers)
        return [response.body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back so that moto reads it too."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)
