"""One OpenAPI document for the whole ``/api/v1``, merged from the services' own.

Each service's ``/openapi.json`` is fetched (and cached for a short time), its paths are
kept where the gateway routes them to that service (they are written as ``/api/v1/...``
already), and its components are merged: a component with the same name and the same
content is shared, one with the same name and different content is renamed
``<service>_<name>`` and every reference to it rewritten. A service that cannot be
reached is left out (or served from its last good copy) and named in ``x-unavailable``
and in ``info.description``, so the SPA developer still gets the rest.

The Swagger UI page loads its JavaScript and CSS from a CDN when it is viewed (FastAPI's
defaults), so it needs a browser with internet access; the JSON document does not.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse, JSONResponse

from gateway.proxy import Upstreams, current_request_id
from rcm_kit.logging import get_logger

log = get_logger("gateway.openapi")

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"
TITLE = "RCM platform API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Eligibility sweeps and the payer contract registry, behind one gateway. "
    "Every route takes `Authorization: Bearer <JWT>` (claims `tenant_id` and `perms`), "
    "answers errors as `application/problem+json` and carries `X-Request-ID`."
)
# A service that failed is not asked again for this long, so a page of docs does not
# wait on a dead service at every reload.
RETRY_AFTER_FAILURE_SECONDS = 2.0
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024

router = APIRouter(include_in_schema=False)


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    """A copy of ``node`` with ``#/components/<kind>/<name>`` references renamed."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = renames.get(value, value)
            elif key == "mapping" and isinstance(value, dict):
                out[key] = {
                    k: renames.get(v, v) if isinstance(v, str) else v for k, v in value.items()
                }
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _ref(kind: str, name: str) -> str:
    return f"#/components/{kind}/{name}"


def merge_documents(
    documents: Mapping[str, dict[str, Any]],
    owner_of: Callable[[str], str | None],
    *,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge the services' documents (in the mapping's order) into ``base``.

    ``owner_of(path)`` names the service the gateway routes ``path`` to; a service's path
    that the gateway would send elsewhere (or nowhere) is not reachable, so not listed.
    """
    merged: dict[str, Any] = copy.deepcopy(base) if base else {}
    merged.setdefault("openapi", "3.1.0")
    merged.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = merged.setdefault("components", {})
    tags: list[dict[str, Any]] = merged.setdefault("tags", [])
    operation_ids = {
        op.get("operationId")
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
    }

    for service, document in documents.items():
        theirs: dict[str, dict[str, Any]] = document.get("components") or {}
        # Rename until stable: a schema equal by text differs once a schema it refers to
        # was renamed, since its reference then points elsewhere.
        renames: dict[str, str] = {}
        while True:
            rewritten = {
                kind: {name: _rewrite_refs(value, renames) for name, value in items.items()}
                for kind, items in theirs.items()
                if isinstance(items, dict)
            }
            clashes = [
                (kind, name)
                for kind, items in rewritten.items()
                for name, value in items.items()
                if _ref(kind, name) not in renames
                and name in components.get(kind, {})
                and components[kind][name] != value
            ]
            if not clashes:
                break
            for kind, name in clashes:
                new_name = f"{service}_{name}"
                while new_name in components.get(kind, {}) or new_name in theirs.get(kind, {}):
                    new_name = f"{service}_{new_name}"
                renames[_ref(kind, name)] = _ref(kind, new_name)
        for kind, items in rewritten.items():
            target = components.setdefault(kind, {})
            for name, value in items.items():
                renamed = renames.get(_ref(kind, name), _ref(kind, name)).rsplit("/", 1)[1]
                target.setdefault(renamed, value)

        for path, item in (document.get("paths") or {}).items():
            if owner_of(path) != service or not isinstance(item, dict):
                continue
            rewritten_item = _rewrite_refs(item, renames)
            for operation in rewritten_item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    if operation["operationId"] in operation_ids:
                        operation["operationId"] = f"{service}_{operation['operationId']}"
                    operation_ids.add(operation["operationId"])
            merged["paths"].setdefault(path, {}).update(rewritten_item)

        known = {tag.get("name") for tag in tags}
        for tag in document.get("tags") or []:
            if isinstance(tag, dict) and tag.get("name") not in known:
                tags.append(tag)
                known.add(tag.get("name"))

    if not tags:
        merged.pop("tags")
    return merged


@dataclass
class _Cached:
    document: dict[str, Any] | None = None
    fetched_at: float = float("-inf")
    failed_at: float = float("-inf")
    error: str = ""


class MergedOpenApi:
    """The merged document, rebuilt from per-service copies at most every ``ttl`` seconds."""

    def __init__(
        self,
        upstreams: Upstreams,
        owner_of: Callable[[str], str | None],
        own_document: Callable[[], dict[str, Any]],
        *,
        ttl_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstreams = upstreams
        self.owner_of = owner_of
        self.own_document = own_document
        self.ttl = ttl_seconds
        self.timeout = timeout_seconds
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = asyncio.Lock()

    async def _fetch(self, service: str, request_id: str) -> None:
        entry = self._cache.setdefault(service, _Cached())
        proxy = self.upstreams.proxies[service]
        try:
            async with proxy.session.get(
                proxy.base_url + "/openapi.json",
                headers={"x-request-id": request_id, "accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(MAX_DOCUMENT_BYTES)
                if response.status != 200:
                    raise ValueError(f"/openapi.json answered {response.status}")
                document = json.loads(raw)
                if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
                    raise ValueError("/openapi.json is not an OpenAPI document")
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            entry.failed_at = self.clock()
            entry.error = str(error) if isinstance(error, ValueError) else type(error).__name__
            log.warning("openapi.fetch_failed", service=service, error=entry.error)
            return
        entry.document = document
        entry.fetched_at = self.clock()

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            now = self.clock()
            request_id = current_request_id()
            due = [
                service
                for service in self.upstreams.proxies
                if now - self._cache.get(service, _Cached()).fetched_at > self.ttl
                and now - self._cache.get(service, _Cached()).failed_at
                > min(self.ttl, RETRY_AFTER_FAILURE_SECONDS)
            ]
            await asyncio.gather(*(self._fetch(service, request_id) for service in due))
            now = self.clock()
            states: dict[str, str] = {}
            documents: dict[str, dict[str, Any]] = {}
            for service in self.upstreams.proxies:
                entry = self._cache.get(service, _Cached())
                if entry.document is None:
                    states[service] = "unavailable"
                    continue
                documents[service] = entry.document
                states[service] = "ok" if now - entry.fetched_at <= self.ttl else "stale"

        own = self.own_document()
        base = {
            "openapi": own.get("openapi", "3.1.0"),
            "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
            "paths": own.get("paths", {}),
            "components": own.get("components", {}),
            "tags": own.get("tags", []),
        }
        merged = merge_documents(documents, self.owner_of, base=base)
        merged["x-services"] = states
        missing = [service for service, state in states.items() if state != "ok"]
        if missing:
            merged["x-unavailable"] = missing
            merged["info"]["description"] += (
                "\n\n**Incomplete:** "
                + ", ".join(
                    f"the {s} service did not answer"
                    + (" (its last good copy is shown)" if states[s] == "stale" else "")
                    for s in missing
                )
                + "; reload later for its routes."
            )
        return merged


def own_document_factory(app_routes: Callable[[], list[Any]]) -> Callable[[], dict[str, Any]]:
    """The gateway's own routes (the platform health) as an OpenAPI document, built once."""
    built: dict[str, Any] = {}

    def own() -> dict[str, Any]:
        if not built:
            built.update(get_openapi(title=TITLE, version=VERSION, routes=app_routes()))
        return built

    return own


@router.get(OPENAPI_PATH)
async def openapi_json(request: Request) -> JSONResponse:
    merged: MergedOpenApi = request.app.state.openapi
    return JSONResponse(await merged.document(), headers={"Cache-Control": "no-cache"})


@router.get(DOCS_PATH)
async def swagger_ui() -> HTMLResponse:
    # The UI's assets come from FastAPI's default CDN when the page is viewed.
    return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{TITLE} - Swagger UI")
