"""HTTP skill server (FastAPI, ``pip install skillkit[server]``): ``POST /route``, ``GET /skills/{name}``,
``GET /health``.

Optional bearer-token auth protects ``/route`` and ``/skills`` (``/health`` stays open for probes);
requests larger than ``max_body_bytes`` get 413, ``k`` above ``max_k`` or over-long queries get 422.
"""

from __future__ import annotations

import hmac
import threading
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from retriever.router import METHODS, Router


class RouteRequest(BaseModel):
    """Body of ``POST /route``: one ``query`` or a list of ``queries``."""

    query: str | None = None
    queries: list[str] | None = None
    k: int = Field(5, ge=1)
    tier: str | None = None
    method: str = "rerank"
    with_body: bool = False


def create_app(router: Router, token: str | None = None, max_k: int = 50, max_body_bytes: int = 16_384,
               max_query_chars: int = 2_000, max_batch: int = 64) -> FastAPI:
    """Build the FastAPI app serving ``router``."""
    app = FastAPI(title="skillkit skill router", version="1")
    lock = threading.Lock()  # the router keeps per-call timings; serialise calls

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse({"detail": f"request body over {max_body_bytes} bytes"}, status_code=413)
        if request.method == "POST" and length is None:
            body = await request.body()
            if len(body) > max_body_bytes:
                return JSONResponse({"detail": f"request body over {max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    def check_token(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "skills": len(router), "reranker": router.reranker is not None,
                "auth": token is not None, "max_k": max_k}

    @app.post("/route", dependencies=[Depends(check_token)])
    def route(req: RouteRequest) -> dict[str, Any]:
        if (req.query is None) == (req.queries is None):
            raise HTTPException(422, "give exactly one of 'query' or 'queries'")
        queries = [req.query] if req.query is not None else list(req.queries or [])
        if not queries or len(queries) > max_batch:
            raise HTTPException(422, f"between 1 and {max_batch} queries per request")
        if any(not q.strip() or len(q) > max_query_chars for q in queries):
            raise HTTPException(422, f"queries must be non-empty and at most {max_query_chars} characters")
        if req.k > max_k:
            raise HTTPException(422, f"k={req.k} is over this server's limit of {max_k}")
        if req.method not in METHODS:
            raise HTTPException(422, f"unknown method {req.method!r}: use one of {', '.join(METHODS)}")
        with lock:
            results = router.route_batch(queries, k=req.k, tier=req.tier, method=req.method)
            method, timings = router.last_method, dict(router.last_timings)
        rows = [[r.to_dict(with_text=req.with_body) for r in row] for row in results]
        out: dict[str, Any] = {"method": method, "timings": timings}
        if req.query is not None:
            out["results"] = rows[0]
        else:
            out["batch"] = rows
        return out

    @app.get("/skills/{name}", dependencies=[Depends(check_token)])
    def get_skill(name: str) -> dict[str, Any]:
        try:
            return router.get(name).to_dict()
        except KeyError:
            raise HTTPException(404, f"no skill named {name!r}") from None

    return app


def serve(router: Router, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          **limits: Any) -> None:
    """Run the server in the foreground with uvicorn."""
    import uvicorn

    uvicorn.run(create_app(router, token=token, **limits), host=host, port=port, log_level="warning")
