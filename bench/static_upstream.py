"""A stand-in service: a FastAPI app whose ``GET /api/v1/payers`` answers the same bytes
every time, with no token, tenant or database behind it:
``python -m bench.static_upstream --port P --body FILE``.

It is what the issue's reference figures measured (a ~1 KB JSON endpoint on uvicorn),
and against it a proxy's own cost is not hidden behind the real service's (contracts-api
spends about 2 ms of CPU on a payers page: token, tenant, transaction, query).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.responses import Response


def make_app(body: bytes) -> FastAPI:
    app = FastAPI(openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/payers")
    async def payers() -> Response:
        return Response(body, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.body.read_bytes()),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
