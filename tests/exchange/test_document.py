"""The published contract, `docs/exchange-hook.yaml`: a valid OpenAPI 3.1 document that says what
the code does. The reference implementation's answers, good and bad, and the client's requests
validate against its schemas.

Schemas are checked with `jsonschema` (Draft 2020-12, the dialect of OpenAPI 3.1's schemas), with
the whole document as the resource its `$ref`s point into, rather than with `openapi-core`: the
bodies are what an exchange builds against, and this checks exactly them, with the validator that
`openapi-spec-validator` itself is built on, and no framework adapter between the test and them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from flask import Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from pydantic import BaseModel
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ivr.clock import FrozenClock
from ivr.exchange import contract
from ivr.exchange.client import HttpExchange
from ivr.exchange.contract import PATHS
from ivr.exchange.reference import create_reference_app, reference_of
from tests.exchange.support import CALL, GERMAN, SECRET, VIP, signed_post
from tests.support import ROOT

DOCUMENT_FILE = ROOT / "docs" / "exchange-hook.yaml"
DOCUMENT: dict[str, Any] = yaml.safe_load(DOCUMENT_FILE.read_text(encoding="utf-8"))
BASE = "urn:ivr:exchange-hook"
REGISTRY: Registry[Any] = Registry().with_resource(
    BASE, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

MODELS: dict[str, type[BaseModel]] = {
    "LookupRequest": contract.LookupRequest,
    "Account": contract.Account,
    "VerifyStartRequest": contract.VerifyStartRequest,
    "Verification": contract.Verification,
    "VerifyCheckRequest": contract.VerifyCheckRequest,
    "CodeChecked": contract.CodeChecked,
    "LockRequest": contract.LockRequest,
    "Locked": contract.Locked,
}
"""The document's schemas and the contract's models they describe."""


def validator(pointer: str) -> Draft202012Validator:
    """A validator of the schema at `pointer` (`#/components/...`) in the document."""
    return Draft202012Validator({"$ref": BASE + pointer}, registry=REGISTRY)


def resolved(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(its pointer, the node) after following a `$ref` to the document's components."""
    pointer = node.get("$ref", "")
    if not pointer:
        return "", node
    target: Any = DOCUMENT
    for part in pointer.removeprefix("#/").split("/"):
        target = target[part]
    return pointer, target


def answer_pointer(path: str, status: int) -> str:
    """The pointer to the schema the document gives `path`'s answers with `status`."""
    responses = DOCUMENT["paths"][path]["post"]["responses"]
    key = str(status) if str(status) in responses else f"{status // 100}XX"
    assert key in responses, f"{path} answers {status}, which the document does not name"
    pointer, response = resolved(responses[key])
    base = pointer or f"#/paths/{path.replace('/', '~1')}/post/responses/{key}"
    assert "application/json" in response["content"]
    return f"{base}/content/application~1json/schema"


def request_pointer(path: str) -> str:
    escaped = path.replace("/", "~1")
    return f"#/paths/{escaped}/post/requestBody/content/application~1json/schema"


def test_the_document_is_valid_openapi_3_1() -> None:
    spec, _ = read_from_filename(str(DOCUMENT_FILE))
    validate(spec)  # raises on any error
    assert DOCUMENT["openapi"].startswith("3.1")


def test_the_document_has_the_contracts_paths_all_signed() -> None:
    assert set(DOCUMENT["paths"]) == set(PATHS.values())
    scheme = DOCUMENT["components"]["securitySchemes"]["signature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == (
        "apiKey",
        "header",
        contract.SIGNATURE_HEADER,
    )
    assert "HMAC-SHA256" in scheme["description"]
    assert DOCUMENT["security"] == [{"signature": []}]
    for path in PATHS.values():
        responses = DOCUMENT["paths"][path]["post"]["responses"]
        assert {"200", "400", "401", "5XX"} <= set(responses), path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_schema_names_the_fields_of_its_model(name: str) -> None:
    schema = DOCUMENT["components"]["schemas"][name]
    model = MODELS[name]
    assert set(schema["properties"]) == set(model.model_fields)
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    assert set(schema["required"]) == required


# --- the reference implementation's answers ---------------------------------------------------


def exchanges(app: Flask) -> Iterator[tuple[str, int, Any]]:
    """(path, status, body) of good and bad requests to the reference implementation."""
    reference = reference_of(app)

    def post(path: str, body: dict[str, Any] | bytes, **signing: Any) -> tuple[str, int, Any]:
        response = signed_post(app, path, body, **({"at": NOW.timestamp()} | signing))
        assert response.mimetype == "application/json", (path, response.data)
        return path, response.status_code, response.get_json()

    lookup, start, check, lock = (
        PATHS[k] for k in ("lookup", "verify_start", "verify_check", "lock")
    )
    yield post(lookup, {"caller": GERMAN.number, "call": CALL})
    yield post(lookup, {"caller": VIP.number, "call": CALL})
    yield post(lookup, {"caller": "+4930123456", "call": CALL})
    yield post(lookup, {"caller": "+4930123456"})
    yield post(lookup, b"{not json")
    yield post(lookup, {"caller": GERMAN.number, "call": CALL}, secret="wrong" * 8)
    yield post(lookup, {"caller": GERMAN.number, "call": CALL}, at=NOW.timestamp() - 600)
    path, status, started = post(start, {"account": GERMAN.account, "call": CALL})
    yield path, status, started
    yield post(start, {"account": "acct-nobody", "call": CALL})
    yield post(start, {"account": GERMAN.account, "call": "not a call"})
    code = reference.codes_sent[GERMAN.account]
    yield post(check, {"verification": started["verification"], "code": "000000"})
    yield post(check, {"verification": started["verification"], "code": code})
    yield post(check, {"verification": started["verification"], "code": "12"})
    yield post(check, {"verification": "v-nobody", "code": code})
    body = {"account": GERMAN.account, "call": CALL, "reference": "20261123001", "verified": True}
    yield post(lock, body)
    yield post(lock, body)
    yield post(lock, {**body, "account": "acct-nobody"})
    yield post(lock, {**body, "verified": "yes"})
    yield post(lock, body, header="")


def test_every_answer_of_the_reference_implementation_is_documented_and_validates() -> None:
    app = create_reference_app(SECRET, clock=FrozenClock(NOW))
    seen = set()
    for path, status, body in exchanges(app):
        problems = [e.message for e in validator(answer_pointer(path, status)).iter_errors(body)]
        assert not problems, (path, status, body, problems)
        seen.add(status)
    assert seen == {200, 400, 401, 404}


def test_the_schemas_refuse_what_the_client_refuses() -> None:
    # The document is as strict as the client: an answer it calls valid, the client takes.
    account = validator(answer_pointer(PATHS["lookup"], 200))
    assert account.is_valid({"account": "acct-1", "language": "de-DE", "tier": "vip"})
    assert account.is_valid({"account": "acct-1", "extra": "ignored"})
    for wrong in (
        {},
        {"account": ""},
        {"account": "acct 1"},
        {"account": "acct-1", "tier": "gold"},
        {"account": "acct-1", "language": "german"},
    ):
        assert not account.is_valid(wrong), wrong
    checked = validator(answer_pointer(PATHS["verify_check"], 200))
    assert not checked.is_valid({"verified": "true"})
    assert not checked.is_valid({"verified": 1})


# --- the client's requests -----------------------------------------------------------------------


def test_every_request_of_the_client_validates_against_the_document() -> None:
    app = create_reference_app(SECRET, clock=FrozenClock(NOW))
    reference = httpx.WSGITransport(app=app)
    sent: list[tuple[str, Any]] = []

    def check_then_forward(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        problems = [
            e.message for e in validator(request_pointer(request.url.path)).iter_errors(body)
        ]
        assert not problems, (request.url.path, problems)
        assert request.method == "POST" and contract.SIGNATURE_HEADER in request.headers
        sent.append((request.url.path, body))
        return reference.handle_request(request)

    client = HttpExchange(
        "http://exchange.test",
        SECRET,
        transport=httpx.MockTransport(check_then_forward),
        clock=FrozenClock(NOW),
    )
    account = client.lookup(GERMAN.number, CALL)
    assert account is not None
    verification = client.start_verification(account.account, CALL)
    assert verification is not None
    assert client.check_code(
        verification.verification, reference_of(app).codes_sent[account.account]
    )
    assert client.lock(account.account, CALL, "20261123001", verified=True)
    assert [path for path, _ in sent] == list(PATHS.values())
