"""``/openapi.json`` documents the response bodies of the management operations of every surface."""

from __future__ import annotations

import httpx

MANAGEMENT_PREFIXES = ("/models", "/workflows", "/torc-service/v1", "/api", "/v2/repository")
METHODS = ("get", "post", "put", "patch", "delete")


def _documented(operation: dict, components: dict) -> bool:
    """True when some 2xx response of the operation names a non-empty JSON body schema."""
    for status, response in operation.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        for media in response.get("content", {}).values():
            schema = media.get("schema") or {}
            ref = schema.get("$ref")
            if ref:
                schema = components.get(ref.rsplit("/", 1)[-1], {})
            if schema and schema != {"type": "object"}:
                return True
    return False


async def test_management_operations_document_their_response_bodies(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    components = document.get("components", {}).get("schemas", {})
    operations = [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        if path.startswith(MANAGEMENT_PREFIXES)
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(operations) > 80  # every surface is in the document
    undocumented = [f"{m} {p}" for m, p, op in operations if not _documented(op, components)]
    share = 1 - len(undocumented) / len(operations)
    assert share >= 0.95, f"{share:.0%} documented; missing: {undocumented}"


async def test_operation_ids_are_unique(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))
