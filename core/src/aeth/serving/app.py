"""``aeth serve``'s web application: :func:`create_app` builds it from an :class:`~aeth.app.Aeth`,
an engine and the settings, so tests and embedders make as many as they like.

Routes: ``POST /v1/chat/completions`` (streamed as server-sent events, or not), ``GET /v1/models``,
``POST /v1/feedback``, ``WS /v1/ws`` (:mod:`aeth.serving.ws`), ``GET /health`` (no key needed)
and ``GET /metrics``. Every refusal is OpenAI's error body with the right status.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from aeth.serving.completions import Completion, Completions
from aeth.serving.engine import Engine
from aeth.serving.errors import APIError, from_validation
from aeth.serving.limits import Admission, RateLimiter
from aeth.serving.metrics import Metrics
from aeth.serving.schemas import ChatCompletionRequest, FeedbackBody
from aeth.serving.settings import ServeSettings

ERRORS = {status: {"description": text, "content": {"application/json": {"example": {"error": {
    "message": text, "type": "invalid_request_error", "param": None, "code": None}}}}}
    for status, text in [(400, "Invalid request"), (401, "Missing or invalid API key"), (403, "Not allowed for this key"),
                         (404, "Unknown model or interaction"), (413, "Body too large"),
                         (429, "Rate limit reached (see Retry-After)"), (503, "At capacity (see Retry-After)")]}


class Server:
    """What one server holds: the application, its engine, limits, metrics, and the completions service."""

    def __init__(self, app: Any, engine: Engine, settings: ServeSettings):
        self.app, self.engine, self.settings = app, engine, settings
        self.metrics = Metrics(app)
        self.limiter = RateLimiter()
        self.admission = Admission(settings.max_concurrent, settings.max_queue)
        self.completions = Completions(app, engine, self.metrics, self.limiter)
        self.started = time.time()
        self.metrics.queue.set_function(lambda: self.admission.waiting)
        self.metrics.running.set_function(lambda: self.admission.busy)

    async def authenticate(self, authorization: str | None) -> Any:
        """The API key behind an ``Authorization`` header (None when the server has no keys)."""
        store = self.app.store
        if not await run_in_threadpool(store.has_keys):
            return None
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise APIError(401, "this server needs an API key: send 'Authorization: Bearer KEY' (create one with "
                                "`aeth keys create NAME`)", code="missing_api_key", reason="auth")
        key = await run_in_threadpool(store.verify_key, secret.strip())
        if key is None:
            raise APIError(401, "invalid API key (unknown or revoked)", code="invalid_api_key", reason="auth")
        return key

    def admit(self, key: Any) -> None:
        """Apply the key's requests-per-minute and tokens-per-minute limits."""
        if key is not None:
            self.limiter.admit(key.id, key.rpm, key.tpm)


def create_app(app: Any, engine: Engine | None = None, settings: ServeSettings | None = None) -> FastAPI:
    """The web application serving ``app`` (an :class:`~aeth.app.Aeth`) through ``engine``
    (default: :class:`~aeth.serving.batching.BatchingEngine`)."""
    from aeth import __version__

    if engine is None:
        from aeth.serving.batching import BatchingEngine

        engine = BatchingEngine(app)
    settings = settings or ServeSettings()
    server = Server(app, engine, settings)
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()  # the server is shutting down: stop every generation

    web = FastAPI(title="aeth", version=__version__, description="OpenAI-compatible API over aeth's specialists.",
                  responses=ERRORS, lifespan=lifespan)
    web.state.server = server
    web.add_middleware(BodyLimit, limit=settings.max_body_bytes, metrics=server.metrics)

    @web.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        server.metrics.rejections.labels(e.reason).inc()
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers())

    @web.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return await api_error(request, from_validation(list(e.errors())))

    async def key(request: Request) -> Any:
        return await server.authenticate(request.headers.get("authorization"))

    @web.get("/health", summary="Liveness: no key needed")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "uptime_s": round(time.time() - server.started, 1),
                **engine.stats()}

    @web.get("/metrics", summary="Prometheus metrics")
    async def metrics(_: Any = Depends(key)) -> Response:
        body, kind = await run_in_threadpool(server.metrics.exposition)  # the learning gauges read the store
        return Response(body, media_type=kind)

    @web.get("/v1/models", summary="The specialists, each with its active adapter version and lineage")
    async def models(_: Any = Depends(key)) -> dict[str, Any]:
        return {"object": "list", "data": await run_in_threadpool(list_models, app, server.started)}

    @web.post("/v1/chat/completions", summary="Answer a conversation (streamed with stream=true)")
    async def chat_completions(body: ChatCompletionRequest, request: Request, api_key: Any = Depends(key)) -> Any:
        server.admit(api_key)
        slot = server.admission.slot()  # 503 here when the queue is full, before any work
        if not body.stream:
            async with slot:
                done = await server.completions.start(body, api_key)
                try:
                    done.texts = list(await asyncio.gather(*(_collect(g) for g in done.generations)))
                except BaseException:  # the client left (cancelled) or generation failed
                    for g in done.generations:
                        g.cancel()
                    raise
                await server.completions.finish(done)
            return JSONResponse(server.completions.response(done), headers=done.headers())
        await slot.__aenter__()
        try:
            done = await server.completions.start(body, api_key)
        except BaseException:
            await slot.__aexit__(None, None, None)
            raise
        return StreamingResponse(_sse(server, done, slot), media_type="text/event-stream", headers={
            **done.headers(), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @web.post("/v1/feedback", summary="Feedback on an answer, by its interaction id")
    async def feedback(body: FeedbackBody, api_key: Any = Depends(key)) -> dict[str, Any]:
        return await store_feedback(app, body, api_key)

    from aeth.serving.ws import add_websocket

    add_websocket(web, server)

    return web


async def store_feedback(app: Any, body: FeedbackBody, key: Any) -> dict[str, Any]:
    """Store feedback (durably, before answering); an unknown interaction is a 404."""
    from aeth.store import StoreError, UnknownInteraction

    try:
        fid = await run_in_threadpool(app.store.record_feedback, body.interaction, body.kind, body.value,
                                      comment=body.comment, feedback_id=body.id, source="user")
    except UnknownInteraction as e:
        raise APIError(404, str(e), code="interaction_not_found", param="interaction") from None
    except StoreError as e:  # a value that does not fit the kind
        raise APIError(400, str(e), code="invalid_feedback", param="value") from None
    return {"object": "feedback", "id": fid, "interaction": body.interaction}


async def _collect(gen: Any) -> str:
    return "".join([piece async for piece in gen])


async def _sse(server: Server, done: Completion, slot: Any) -> AsyncIterator[bytes]:
    """The server-sent events of a streamed completion; a client that leaves cancels its generations."""
    c = server.completions
    include_usage = bool(done.body.stream_options and done.body.stream_options.include_usage)
    texts = [[] for _ in done.generations]
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, gen: Any) -> None:
        try:
            async for piece in gen:
                await queue.put((i, piece))
        except BaseException as e:  # noqa: BLE001
            await queue.put((i, e))
        finally:
            await queue.put((i, None))

    tasks: list[asyncio.Task] = []
    complete = False
    try:
        yield _event(c.chunk(done, 0, {"role": "assistant", "content": ""}, aeth=done.aeth()))
        for i in range(1, len(done.generations)):
            yield _event(c.chunk(done, i, {"role": "assistant", "content": ""}))
        tasks = [asyncio.create_task(pump(i, g)) for i, g in enumerate(done.generations)]
        left, failed = len(tasks), None
        while left:
            i, item = await queue.get()
            if item is None:
                left -= 1
            elif isinstance(item, BaseException):
                failed = failed or item
            else:
                texts[i].append(item)
                yield _event(c.chunk(done, i, {"content": item}))
        if failed is not None:
            yield _event({"error": {"message": f"generation failed: {failed}", "type": "server_error",
                                    "param": None, "code": "generation_failed"}})
            return
        done.texts = ["".join(t).strip() for t in texts]
        await c.finish(done)  # logged and committed before the client hears the answer is complete
        for i in range(len(done.generations)):
            extra = {"aeth": done.aeth(final=True)} if i == 0 else {}
            yield _event(c.chunk(done, i, finish=done.finish[i], **extra))
        if include_usage:
            yield _event(c.chunk(done, None, usage=done.usage()))
        yield b"data: [DONE]\n\n"
        complete = True
    finally:  # normal end, or the client went away (the generator is cancelled)
        for t in tasks:
            t.cancel()
        if not complete and not done.texts:
            c.abandon(done, texts)
        await slot.__aexit__(None, None, None)


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def list_models(app: Any, created: float) -> list[dict[str, Any]]:
    """``GET /v1/models``: ``aeth`` (routed) and every specialist, with its active adapter and lineage."""
    out = [{"id": "aeth", "object": "model", "created": int(created), "owned_by": "aeth",
            "aeth": {"routed": True, "specialists": sorted(app.specialists())}}]
    for name, spec in sorted(app.specialists().items()):
        active = app.adapters.active(name)
        versions = app.adapters.versions(name)
        out.append({"id": name, "object": "model", "created": int(created), "owned_by": spec.plugin or "aeth",
                    "aeth": {"description": spec.description, "base_model": spec.base_model,
                             "accepts_images": spec.accepts_images,
                             "adapter": active.version if active else None,
                             "lineage": _lineage(active.manifest) if active else None,
                             "versions": [v.version for v in versions]}})
    return out


def _lineage(manifest: dict[str, Any]) -> dict[str, Any]:
    recipe = manifest.get("recipe") or {}
    scores = manifest.get("eval") or {}
    return {"base_hash": manifest.get("base_hash"), "data_hash": recipe.get("data_hash"),
            "parent": manifest.get("parent"), "created": manifest.get("created"),
            "gate": {"suite": scores.get("suite"), "score": scores.get("score"), "baseline": scores.get("baseline"),
                     "baseline_score": scores.get("baseline_score")} if scores else None}


class BodyLimit:
    """ASGI middleware: a body larger than ``limit`` bytes gets 413 before anything reads it all."""

    def __init__(self, app: Any, limit: int, metrics: Metrics):
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        e = APIError(413, f"the request body is larger than {self.limit // 1024} KiB (aeth serve --max-body-kb)",
                     code="request_too_large", reason="body_too_large")
        self.metrics.rejections.labels(e.reason).inc()
        body = json.dumps(e.body()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
