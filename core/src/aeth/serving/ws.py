"""``WS /v1/ws``: one socket, many requests at once, with control messages in band.

Every message is one JSON object with a ``type``. The client sends:

- ``{"type": "chat", "id": "r1", "request": {...}}``: a chat completion body (as for
  ``POST /v1/chat/completions``; ``stream`` is implied). The server answers with
  ``{"type": "start", "id", "aeth"}``, then ``{"type": "delta", "id", "index", "content"}`` as text
  comes, then ``{"type": "done", "id", "response"}`` holding the whole ``chat.completion`` object
  (sent after the interaction is committed to the log).
- ``{"type": "cancel", "id": "r1"}``: stop that request at its next token; its ``done`` follows
  with ``finish_reason`` "cancelled" in ``response.aeth.finish_reasons``.
- ``{"type": "feedback", "id": "f1", "feedback": {"interaction", "kind", "value", "comment", "id"}}``:
  stored before ``{"type": "feedback", "id", "feedback_id"}`` answers.
- ``{"type": "ping", "id": ...}``: answered by ``{"type": "pong", "id"}``.

A refusal is ``{"type": "error", "id", "status", "error": {OpenAI's error object}}``; the socket
stays open. Authentication is the ``Authorization: Bearer KEY`` header of the handshake; without
a valid key (when the server has keys) the handshake is refused. Closing the socket cancels every
request still running on it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from aeth.serving.errors import APIError, from_validation
from aeth.serving.schemas import ChatCompletionRequest, FeedbackBody

MAX_OPEN = 64  #: requests one socket may have running at once


def add_websocket(web: FastAPI, server: Any) -> None:
    """Add ``/v1/ws`` to ``web`` for ``server`` (an :class:`aeth.serving.app.Server`)."""

    @web.websocket("/v1/ws")
    async def socket(ws: WebSocket) -> None:
        try:
            key = await server.authenticate(ws.headers.get("authorization"))
        except APIError as e:
            server.metrics.rejections.labels(e.reason).inc()
            await ws.close(code=1008, reason=e.message[:120])
            return
        await ws.accept()
        await Session(ws, server, key).run()


class Session:
    """One open socket: its running requests and the lock that keeps its messages whole."""

    def __init__(self, ws: WebSocket, server: Any, key: Any):
        self.ws, self.server, self.key = ws, server, key
        self.lock = asyncio.Lock()
        self.running: dict[str, tuple[asyncio.Task, list]] = {}

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    async def error(self, rid: Any, e: APIError) -> None:
        self.server.metrics.rejections.labels(e.reason).inc()
        await self.send({"type": "error", "id": rid, "status": e.status, "error": e.body()["error"]})

    async def run(self) -> None:
        try:
            while True:
                raw = await self.ws.receive_text()
                try:
                    await self.handle(raw)
                except APIError as e:
                    await self.error(None, e)
                except (WebSocketDisconnect, asyncio.CancelledError):
                    raise
                except Exception as e:  # noqa: BLE001  (one bad message must not close the socket)
                    await self.error(None, APIError(500, f"the message could not be handled: {e}", code="server_error",
                                                    reason="error"))
        except WebSocketDisconnect:
            pass
        finally:
            for task, gens in list(self.running.values()):
                for g in gens:
                    g.cancel()
                task.cancel()

    async def handle(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return await self.error(None, APIError(400, "a message must be one JSON object", code="invalid_json"))
        if not isinstance(message, dict):
            return await self.error(None, APIError(400, "a message must be one JSON object", code="invalid_json"))
        kind, rid = message.get("type"), message.get("id")
        if kind == "ping":
            return await self.send({"type": "pong", "id": rid})
        if kind == "cancel":
            for g in self.running.get(str(rid), (None, []))[1]:
                g.cancel()
            return None
        if kind == "feedback":
            return await self.feedback(rid, message.get("feedback"))
        if kind == "chat":
            return await self.chat(rid, message.get("request"))
        return await self.error(rid, APIError(400, f"unknown message type {kind!r}: send chat, cancel, feedback or ping",
                                              code="unknown_type", param="type"))

    async def feedback(self, rid: Any, body: Any) -> None:
        from aeth.serving.app import store_feedback

        try:
            parsed = FeedbackBody.model_validate(body)
            result = await store_feedback(self.server.app, parsed, self.key)
        except ValidationError as e:
            return await self.error(rid, from_validation(list(e.errors())))
        except APIError as e:
            return await self.error(rid, e)
        await self.send({"type": "feedback", "id": rid, "feedback_id": result["id"]})

    async def chat(self, rid: Any, body: Any) -> None:
        if not isinstance(rid, (str, int)) or str(rid) in self.running:
            return await self.error(rid, APIError(400, "a chat message needs an 'id' (string) not already running",
                                                  code="invalid_id", param="id"))
        if len(self.running) >= MAX_OPEN:
            return await self.error(rid, APIError(429, f"at most {MAX_OPEN} requests may run on one socket",
                                                  code="too_many_requests", reason="socket"))
        try:
            parsed = ChatCompletionRequest.model_validate(body)
            self.server.admit(self.key)
        except ValidationError as e:
            return await self.error(rid, from_validation(list(e.errors())))
        except APIError as e:
            return await self.error(rid, e)
        gens: list = []
        task = asyncio.create_task(self.answer(str(rid), parsed, gens))
        self.running[str(rid)] = (task, gens)

    async def answer(self, rid: str, body: ChatCompletionRequest, gens: list) -> None:
        c = self.server.completions
        try:
            async with self.server.admission.slot():
                done = await c.start(body, self.key)
                gens.extend(done.generations)
                await self.send({"type": "start", "id": rid, "aeth": done.aeth()})
                texts = [[] for _ in done.generations]

                async def pump(i: int, gen: Any) -> None:
                    async for piece in gen:
                        texts[i].append(piece)
                        await self.send({"type": "delta", "id": rid, "index": i, "content": piece})

                await asyncio.gather(*(pump(i, g) for i, g in enumerate(done.generations)))
                done.texts = ["".join(t).strip() for t in texts]
                await c.finish(done)
                response = c.response(done)
                response["aeth"]["finish_reasons"] = [g.stats.get("finish_reason") for g in done.generations]
                await self.send({"type": "done", "id": rid, "response": response})
        except APIError as e:
            await self.error(rid, e)
        except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
            for g in gens:
                g.cancel()
        except Exception as e:  # noqa: BLE001  (the socket outlives one failed request)
            await self.error(rid, APIError(500, f"generation failed: {e}", code="generation_failed", reason="error"))
        finally:
            self.running.pop(rid, None)
