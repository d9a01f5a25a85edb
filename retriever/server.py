"""HTTP skill server (FastAPI, ``pip install skillkit[server]``): ``POST /route``, ``GET /skills/{name}``,
``GET /skills/{name}/files``, ``GET /skills/{name}/files/{path}``, ``GET /health``.

The file endpoints serve what a skill bundles (scripts, references, assets) for progressive
disclosure: route, show names and descriptions, fetch a body, then a file the body points to. They
read through a :class:`SkillFileSource` given by the caller (the CLI passes the library's), so the
server does not depend on the skill library.

Optional bearer-token auth protects ``/route`` and ``/skills`` (``/health`` stays open for probes);
requests larger than ``max_body_bytes`` get 413, ``k`` above ``max_k`` or over-long queries get 422.

Concurrent ``/route`` requests are batched (``batch_window_ms`` > 0, the default): the first request
opens a short collection window, every request that arrives in it (or while the previous batch is
being routed) joins, and each group sharing ``(k, tier, method)`` is routed with one
``route_batch`` call, i.e. one encoder forward pass instead of one per request, as inference
servers do. ``batch_window_ms=0`` routes every request on its own.
"""

from __future__ import annotations

import asyncio
import hmac
import mimetypes
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from retriever.router import METHODS, RerankerMissingError, RoutedSkill, Router

Routed = tuple[list[list[RoutedSkill]], str, dict[str, float]]


class SkillFileSource(Protocol):
    """Reads the files a skill bundles (``skillkit.skills.bundle.SkillFiles`` is one).

    ``list`` gives entries with ``path``, ``size``, ``sha256`` and ``executable``; ``read`` raises
    ``FileNotFoundError`` for a path the skill does not bundle.
    """

    def list(self, skill: Any) -> Sequence[Any]: ...

    def read(self, skill: Any, path: str) -> bytes: ...


class RouteRequest(BaseModel):
    """Body of ``POST /route``: one ``query`` or a list of ``queries``."""

    query: str | None = None
    queries: list[str] | None = None
    k: int = Field(5, ge=1)
    tier: str | None = None
    method: str = "auto"
    with_body: bool = False


@dataclass
class _Waiting:
    queries: list[str]
    key: tuple[int, str | None, str]
    future: asyncio.Future = field(repr=False)


class RouteBatcher:
    """Routes concurrent requests together: collects them for up to ``window_s`` after the first one
    (or until ``max_queries`` queries wait), then routes each group sharing ``(k, tier, method)`` with
    one ``router.route_batch`` call on a single worker thread (the router is not thread-safe)."""

    def __init__(self, router: Router, window_s: float = 0.004, max_queries: int = 64) -> None:
        if window_s <= 0 or max_queries < 1:
            raise ValueError("a batcher needs window_s > 0 and max_queries >= 1")
        self.router = router
        self.window_s = window_s
        self.max_queries = max_queries
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="route-batch")

    async def route(self, queries: Sequence[str], k: int, tier: str | None, method: str) -> Routed:
        """Route one request's queries (awaits the batch it joins): ``(results, method used, batch timings)``."""
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._queue is not None
        waiting = _Waiting(list(queries), (k, tier, method), asyncio.get_running_loop().create_future())
        await self._queue.put(waiting)
        return await waiting.future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].queries)
            deadline = loop.time() + self.window_s
            while size < self.max_queries:
                if not self._queue.empty():  # arrived while the previous batch was being routed
                    item = self._queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                batch.append(item)
                size += len(item.queries)
            outcomes = await loop.run_in_executor(self._executor, self._route_groups, batch)
            for item, outcome in zip(batch, outcomes):
                if item.future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    item.future.set_exception(outcome)
                else:
                    item.future.set_result(outcome)

    def _route_groups(self, batch: list[_Waiting]) -> list[Routed | BaseException]:
        groups: dict[tuple[int, str | None, str], list[int]] = {}
        for pos, item in enumerate(batch):
            groups.setdefault(item.key, []).append(pos)
        outcomes: list[Routed | BaseException] = [ValueError("not routed")] * len(batch)
        for (k, tier, method), members in groups.items():
            flat = [q for pos in members for q in batch[pos].queries]
            try:
                results = self.router.route_batch(flat, k=k, tier=tier, method=method)
            except Exception as exc:  # noqa: BLE001 - handed to every request of the group
                for pos in members:
                    outcomes[pos] = exc
                continue
            timings = {**self.router.last_timings, "batched_queries": float(len(flat))}
            start = 0
            for pos in members:
                n = len(batch[pos].queries)
                outcomes[pos] = (results[start:start + n], self.router.last_method or method, timings)
                start += n
        return outcomes

    def warm_up(self) -> None:
        """Run the encoder once per batch size up to 8 on the worker thread, so the first requests do
        not pay for the thread's and the model's first calls."""
        self._executor.submit(_warm_up, self.router).result()

    async def close(self) -> None:
        """Stop the worker (pending requests are cancelled) and its thread."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=False)


def _warm_up(router: Router) -> None:
    for size in (1, 2, 4, 8):
        router.encoder.encode(["warm-up query for the skill router"] * size, use_cache=False)


def _file_entry(entry: Any) -> dict[str, Any]:
    return {"path": entry.path, "size": entry.size, "sha256": entry.sha256,
            "executable": bool(entry.executable)}


def create_app(router: Router, token: str | None = None, max_k: int = 50, max_body_bytes: int = 16_384,
               max_query_chars: int = 2_000, max_batch: int = 64, batch_window_ms: float = 4.0,
               files: SkillFileSource | None = None) -> FastAPI:
    """Build the FastAPI app serving ``router``. ``batch_window_ms`` > 0 batches concurrent ``/route``
    requests (see :class:`RouteBatcher`); 0 routes each request on its own. ``files`` serves the
    skills' bundled files (None: a skill lists none and the file endpoints answer 404)."""
    if batch_window_ms < 0:
        raise ValueError(f"batch_window_ms must be >= 0, got {batch_window_ms}")
    batcher = RouteBatcher(router, batch_window_ms / 1e3, max_queries=max_batch) if batch_window_ms > 0 else None
    lock = threading.Lock()  # unbatched: the router keeps per-call timings; serialise calls

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        # On the main thread first, blocking: when torch's first forward pass runs on a worker thread
        # instead, every later CPU forward pass on worker threads was ~20x slower (1.1 s instead of
        # 0.06 s for 8 queries, measured with torch 2 threads on the 2-core machine).
        _warm_up(router)
        if batcher is not None:
            await run_in_threadpool(batcher.warm_up)
        yield
        if batcher is not None:
            await batcher.close()

    app = FastAPI(title="skillkit skill router", version="1", lifespan=lifespan)

    def route_alone(queries: list[str], k: int, tier: str | None, method: str) -> Routed:
        with lock:
            results = router.route_batch(queries, k=k, tier=tier, method=method)
            return results, router.last_method or method, dict(router.last_timings)

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
                "auth": token is not None, "max_k": max_k, "batch_window_ms": batch_window_ms}

    @app.post("/route", dependencies=[Depends(check_token)])
    async def route(req: RouteRequest) -> dict[str, Any]:
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
        try:
            router.resolve_method(req.method)
        except RerankerMissingError as exc:
            raise HTTPException(422, str(exc)) from None
        if batcher is None:
            results, method, timings = await run_in_threadpool(route_alone, queries, req.k, req.tier, req.method)
        else:
            results, method, timings = await batcher.route(queries, req.k, req.tier, req.method)
        rows = [[r.to_dict(with_text=req.with_body) for r in row] for row in results]
        out: dict[str, Any] = {"method": method, "timings": timings}
        if req.query is not None:
            out["results"] = rows[0]
        else:
            out["batch"] = rows
        return out

    def find_skill(name: str) -> Any:
        try:
            return router.get(name)
        except KeyError:
            raise HTTPException(404, f"no skill named {name!r}") from None

    def listing(doc: Any) -> list[dict[str, Any]]:
        return [] if files is None or doc.skill is None else [_file_entry(e) for e in files.list(doc.skill)]

    @app.get("/skills/{name}", dependencies=[Depends(check_token)])
    def get_skill(name: str) -> dict[str, Any]:
        doc = find_skill(name)
        return {**doc.to_dict(), "files": listing(doc)}

    @app.get("/skills/{name}/files", dependencies=[Depends(check_token)])
    def list_skill_files(name: str) -> dict[str, Any]:
        doc = find_skill(name)
        return {"name": doc.name, "files": listing(doc)}

    @app.get("/skills/{name}/files/{path:path}", dependencies=[Depends(check_token)])
    def get_skill_file(name: str, path: str) -> Response:
        doc = find_skill(name)
        if files is None or doc.skill is None:
            raise HTTPException(404, f"skill {doc.name!r} has no bundled files on this server")
        try:
            data = files.read(doc.skill, path)
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(data, media_type=media)

    return app


def serve(router: Router, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          **limits: Any) -> None:
    """Run the server in the foreground with uvicorn (``limits``: the other options of :func:`create_app`,
    ``files`` among them)."""
    import uvicorn

    uvicorn.run(create_app(router, token=token, **limits), host=host, port=port, log_level="warning")
