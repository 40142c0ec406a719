"""The gateway's own routes: health, merged OpenAPI and its UI, CORS."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.openapi import merge_documents
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, auth, free_port
from tests.gateway.conftest import client_for, running_gateway

PROBLEM = "application/problem+json"
SPA = "https://spa.example.com"


async def test_liveness_and_readiness_never_ask_the_services() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        running_gateway(SWEEPS_API_URL=dead, CONTRACTS_API_URL=dead) as gw,
        client_for(gw) as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}
        health = await client.get("/api/v1/health")
        assert health.status_code == 503
        assert "sweeps" in health.json()["detail"]
        assert "contracts" in health.json()["detail"]


async def test_platform_health_is_ok_when_every_service_is_ready(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/api/v1/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["services"]) == {"sweeps", "contracts"}
    for service in body["services"].values():
        assert service["status"] == "ready"
        assert service["checks"] == {"database": "ok", "redis": "ok"}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def _resolves(document: dict[str, Any], ref: str) -> bool:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


async def test_the_merged_openapi_holds_both_services_paths(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/v1/payers", "/api/v1/billing-entities", "/api/v1/facilities"):
        assert "get" in document["paths"][path], path
    assert "/api/v1/health" in document["paths"]
    assert "/healthz" not in document["paths"]
    assert document["x-services"] == {"sweeps": "ok", "contracts": "ok"}
    assert "x-unavailable" not in document
    # Every reference points at a component that is there.
    refs = _refs(document)
    assert refs
    assert all(_resolves(document, ref) for ref in refs), refs
    assert "HTTPBearer" in document["components"]["securitySchemes"]


async def test_the_merged_openapi_serves_what_it_can_when_a_service_is_down(
    contracts_server: RunningServer,
) -> None:
    async with (
        running_gateway(
            SWEEPS_API_URL=f"http://127.0.0.1:{free_port()}",
            CONTRACTS_API_URL=contracts_server.url,
        ) as gw,
        client_for(gw) as client,
    ):
        response = await client.get("/api/v1/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert "/api/v1/payers" in document["paths"]
        assert "/api/v1/facilities" not in document["paths"]
        assert document["x-unavailable"] == ["sweeps"]
        assert "sweeps service did not answer" in document["info"]["description"]


async def test_swagger_ui_points_at_the_merged_document(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in response.text
    assert "swagger-ui" in response.text


def test_merging_shares_equal_components_and_renames_different_ones() -> None:
    def schema(ref: str) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": {"$ref": ref}}}}

    page = {"type": "object", "properties": {"items": {"$ref": "#/components/schemas/Item"}}}
    sweeps = {
        "paths": {
            "/api/v1/facilities": {
                "get": {
                    "operationId": "list",
                    "responses": {"200": schema("#/components/schemas/Page")},
                }
            },
            "/api/v1/payers": {"get": {"operationId": "not_routed_here"}},
        },
        "components": {
            "schemas": {
                "Page": page,
                "Item": {"type": "object", "properties": {"facility_id": {"type": "string"}}},
                "Problem": {"type": "object"},
            }
        },
    }
    contracts = {
        "paths": {
            "/api/v1/payers": {
                "get": {
                    "operationId": "list",
                    "responses": {"200": schema("#/components/schemas/Page")},
                }
            }
        },
        "components": {
            "schemas": {
                "Page": page,  # same text, but its Item is a different schema
                "Item": {"type": "object", "properties": {"payer_id": {"type": "string"}}},
                "Problem": {"type": "object"},
            }
        },
    }
    owners = {"/api/v1/facilities": "sweeps", "/api/v1/payers": "contracts"}
    merged = merge_documents({"sweeps": sweeps, "contracts": contracts}, owners.get)

    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"Page", "Item", "Problem", "contracts_Page", "contracts_Item"}
    assert schemas["contracts_Page"]["properties"]["items"]["$ref"] == (
        "#/components/schemas/contracts_Item"
    )
    assert schemas["Page"]["properties"]["items"]["$ref"] == "#/components/schemas/Item"
    payers = merged["paths"]["/api/v1/payers"]["get"]
    assert payers["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/contracts_Page"
    )
    # The sweeps copy of /payers is not where the gateway sends it, so it is not listed.
    assert payers["operationId"] == "contracts_list"
    assert merged["paths"]["/api/v1/facilities"]["get"]["operationId"] == "list"


async def test_cors_preflight_from_an_allowed_origin(gateway: httpx.AsyncClient) -> None:
    response = await gateway.options(
        "/api/v1/payers",
        headers={
            "Origin": SPA,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, idempotency-key, if-match",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "if-match", "idempotency-key", "x-request-id"):
        assert header in allowed
    assert "PATCH" in response.headers["access-control-allow-methods"]


async def test_cors_responses_expose_the_request_id_and_etag(
    gateway: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await gateway.get(
        "/api/v1/payers", headers={"Origin": SPA, **auth(tenant_a, "config.read")}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "etag" in exposed


async def test_cors_ignores_an_origin_not_listed(gateway: httpx.AsyncClient) -> None:
    preflight = await gateway.options(
        "/api/v1/payers",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code == 400
    response = await gateway.get("/api/v1/payers", headers={"Origin": "https://evil.example.com"})
    # Without Access-Control-Allow-Origin the browser shows the SPA nothing of it.
    assert "access-control-allow-origin" not in response.headers


async def test_no_cors_origins_means_no_cors_headers(echo_gateway: httpx.AsyncClient) -> None:
    response = await echo_gateway.get("/api/v1/payers", headers={"Origin": SPA})
    assert "access-control-allow-origin" not in response.headers
