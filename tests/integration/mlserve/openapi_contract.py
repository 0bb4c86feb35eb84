"""Check real responses against the platform's own ``/openapi.json`` (shared by mlserve and v2).

For a response, the operation is found from its request (method + the path template that
matches, literal segments preferred), the response object from its status (exact code, then
``4XX``/``5XX``, then ``default``), and the body is validated with ``jsonschema`` against the
schema published for its media type, ``$ref``s resolved against the document's components.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass
class Checked:
    """What one check found: the operation, the response key used and the body."""

    operation_id: str
    status_key: str
    body: Any


@dataclass
class OpenApiContract:
    """The OpenAPI document of a running app, and the operations its responses were checked by."""

    doc: dict[str, Any]
    seen: set[str] = field(default_factory=set)

    @classmethod
    async def fetch(cls, client: httpx.AsyncClient) -> OpenApiContract:
        """GET ``/openapi.json`` from the app (no credentials needed)."""
        resp = await client.get("/openapi.json", auth=None)
        assert resp.status_code == 200, resp.text
        return cls(resp.json())

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The (template, operation) serving ``method path``."""
        candidates = []
        for template, ops in self.doc["paths"].items():
            op = ops.get(method.lower())
            if op is None:
                continue
            pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path):
                candidates.append((template.count("{"), template, op))
        assert candidates, f"{method} {path} is not in the OpenAPI document"
        _params, template, op = min(candidates, key=lambda c: c[0])
        return template, op

    def response_object(self, op: dict[str, Any], status: int) -> tuple[str, dict[str, Any]]:
        """The documented response for ``status`` (exact, then range, then default)."""
        responses = op.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                return key, responses[key]
        raise AssertionError(
            f"{op.get('operationId')}: status {status} is not documented "
            f"(documented: {sorted(responses)})"
        )

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        """Validate ``instance`` against ``schema`` whose refs point into the document."""
        root = {**schema, "components": self.doc.get("components", {})}
        validator = Draft202012Validator(root, format_checker=FormatChecker())
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message}"
            for e in errors[:10]
        )

    def check(self, resp: httpx.Response, operation_id: str | None = None) -> Checked:
        """Validate one real response against the schema published for its operation and status.

        Args:
            resp: a response of the app under test.
            operation_id: when given, the operation the request must have reached.
        """
        method, path = resp.request.method, resp.request.url.path
        _template, op = self.operation(method, path)
        if operation_id is not None:
            assert op.get("operationId") == operation_id, (op.get("operationId"), operation_id)
        key, response = self.response_object(op, resp.status_code)
        content = response.get("content") or {}
        media = (resp.headers.get("content-type") or "").split(";")[0].strip()
        body: Any = resp.content
        if not content:
            assert resp.content == b"", (
                f"{op['operationId']} {key} documents no body but got {resp.content[:200]!r}"
            )
        else:
            entry = next((v for k, v in content.items() if k.split(";")[0].strip() == media), None)
            assert entry is not None, (
                f"{op['operationId']} {key}: media type {media!r} not in {sorted(content)}"
            )
            schema = entry.get("schema")
            assert schema, f"{op['operationId']} {key} {media}: no schema"
            if media == "application/json":
                body = json.loads(resp.content)
                self.validate(schema, body)
        self.seen.add(op["operationId"])
        return Checked(op["operationId"], key, body)

    def check_body(self, operation_id: str, status: int, body: Any) -> None:
        """Validate a body produced elsewhere (a model's own app) against an operation's schema."""
        op = next(
            op
            for ops in self.doc["paths"].values()
            for method, op in ops.items()
            if method in METHODS and op.get("operationId") == operation_id
        )
        _key, response = self.response_object(op, status)
        schema = response["content"]["application/json"]["schema"]
        self.validate(schema, body)
        self.seen.add(operation_id)
