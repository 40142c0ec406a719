"""The permission matrix of the sweeps routes as API.md states it: sweeps read with
``eligibility.read`` and write with ``eligibility.update``, and neither one implies the
other.

``tests/kit/test_auth.py`` proves every route refuses a token without the permission the
route itself declares, which cannot notice a route declaring the wrong one; the schedule
tests pin the schedule routes. This table pins every sweeps route, runs included."""

from __future__ import annotations

import httpx
import pytest

from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, auth
from tests.kit.routes import ProtectedRoute, protected_routes

BASE = "/api/v1/eligibility/sweeps"
READ, WRITE = "eligibility.read", "eligibility.update"
# Permissions of another area: none of them opens a sweeps route.
FOREIGN = ["config.read", "config.update", "eligibility.inbound"]

MATRIX: dict[tuple[str, str], str] = {
    ("GET", f"{BASE}/cron-presets"): READ,
    ("POST", f"{BASE}/cron-preview"): READ,
    ("GET", f"{BASE}/scheduler"): READ,
    ("GET", f"{BASE}/schedules"): READ,
    ("POST", f"{BASE}/schedules"): WRITE,
    ("GET", f"{BASE}/schedules/{{schedule_id}}"): READ,
    ("PATCH", f"{BASE}/schedules/{{schedule_id}}"): WRITE,
    ("DELETE", f"{BASE}/schedules/{{schedule_id}}"): WRITE,
    ("POST", f"{BASE}/schedules/{{schedule_id}}/pause"): WRITE,
    ("POST", f"{BASE}/schedules/{{schedule_id}}/resume"): WRITE,
    ("POST", f"{BASE}/schedules/{{schedule_id}}/run-now"): WRITE,
    ("GET", f"{BASE}/runs"): READ,
    ("POST", f"{BASE}/runs"): WRITE,
    ("GET", f"{BASE}/runs/{{sweep_run_id}}"): READ,
    ("POST", f"{BASE}/runs/{{sweep_run_id}}/cancel"): WRITE,
    ("POST", f"{BASE}/runs/{{sweep_run_id}}/rerun"): WRITE,
    ("POST", f"{BASE}/runs/{{sweep_run_id}}/retry-failed"): WRITE,
    ("GET", f"{BASE}/runs/{{sweep_run_id}}/members"): READ,
}


def sweeps_routes(server: RunningServer) -> dict[tuple[str, str], ProtectedRoute]:
    return {
        (route.method, route.path): route
        for route in protected_routes(server.server.config.app)
        if route.path.startswith(BASE)
    }


def test_every_documented_route_exists_and_others_follow_the_rule(
    sweeps_server: RunningServer,
) -> None:
    routes = sweeps_routes(sweeps_server)
    assert set(MATRIX) <= set(routes), sorted(set(MATRIX) - set(routes))
    # A route added later reads with eligibility.read when it is a GET, else writes.
    for key, route in routes.items():
        expected = MATRIX.get(key, READ if route.method == "GET" else WRITE)
        assert route.permissions == (expected,), f"{route}: {route.permissions}"


async def _call(
    client: httpx.AsyncClient, route: ProtectedRoute, headers: dict[str, str]
) -> httpx.Response:
    # Random ids (404) and an empty body (422): nothing is created or changed.
    return await client.request(route.method, route.url(), headers=headers, json={})


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
async def test_each_route_opens_to_its_permission_only(
    method: str, path: str, sweeps: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    needed = MATRIX[(method, path)]
    other = WRITE if needed == READ else READ
    route = ProtectedRoute(method, path, (needed,))

    allowed = await _call(sweeps, route, auth(tenant_a, [needed]))
    refused = await _call(sweeps, route, auth(tenant_a, [other, *FOREIGN]))
    both = await _call(sweeps, route, auth(tenant_a, [READ, WRITE]))

    assert allowed.status_code not in (401, 403), allowed.text
    assert both.status_code == allowed.status_code, both.text
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 403
