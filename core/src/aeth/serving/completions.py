"""Chat completions, shared by the HTTP route and the WebSocket: from a validated body to running
generations, and from finished generations to OpenAI's response objects and logged interactions.

:class:`Completions` belongs to one server (its :class:`~aeth.app.Aeth`, engine, limits and
metrics). Work that may block (routing's embedder, an engine loading a model, a database commit)
runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

from aeth.compose import plan
from aeth.errors import AethError, InputTooLong, PolicyBlocked, SpecialistError
from aeth.quality import quality_for
from aeth.request import Bid, Request, Response
from aeth.serving.engine import Engine, HookEngine
from aeth.serving.errors import APIError
from aeth.serving.generation import Generation, Job
from aeth.serving.limits import RateLimiter
from aeth.serving.metrics import Metrics
from aeth.serving.schemas import ChatCompletionRequest, ImagePart
from aeth.specialist import Specialist
from aeth.store.rows import new_id

ROUTED = "aeth"  #: the model name that lets aeth's router choose the specialist


@dataclass
class Completion:
    """One request being answered: what was asked, who answers, and the generations (one per ``n``)."""

    body: ChatCompletionRequest
    key: Any  #: the API key that asked (None without keys)
    request: Request
    specialist: Specialist
    bid: Bid
    bids: list[Bid]
    adapter: str | None  #: the version asked for (None: the active one)
    interactions: list[str]
    started: float
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    generations: list[Generation] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    finish: list[str] = field(default_factory=list)
    #: answer index -> the output check that blocked it (its text is withheld and not stored)
    blocked: dict[int, dict[str, str]] = field(default_factory=dict)
    #: the specialists composing the answer, one per part (aeth.compose); empty: ``specialist`` alone
    parts: list[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Who answers: the specialist, or the contributors joined with ``+``."""
        return "+".join(p.specialist for p in self.parts) if self.parts else self.specialist.name

    def aeth(self, final: bool = False) -> dict[str, Any]:
        """The ``aeth`` object of a response: who answered, why, and the interaction ids."""
        out = {"specialist": self.name, "interaction": self.interactions[0],
               "route": {"reason": self.bid.reason, "score": round(self.bid.score, 4),
                         "bids": [{"specialist": b.specialist, "score": round(b.score, 4)} for b in self.bids]}}
        if len(self.interactions) > 1:
            out["interactions"] = self.interactions
        if final and self.generations:
            out["adapter"] = self.generations[0].stats.get("adapter")
            if self.parts:
                out["contributors"] = self.generations[0].stats.get("contributors") or [
                    {"specialist": p.specialist, "part": p.prompt} for p in self.parts]
            if self.generations[0].stats.get("quality"):
                out["quality"] = [g.stats.get("quality") for g in self.generations] if len(self.generations) > 1 \
                    else self.generations[0].stats["quality"]
        return out

    def usage(self) -> dict[str, int]:
        prompt = self.generations[0].stats.get("tokens_in", 0) if self.generations else 0
        completion = sum(g.stats.get("tokens_out", 0) for g in self.generations)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def headers(self) -> dict[str, str]:
        return {"x-aeth-specialist": self.name, "x-aeth-interaction": self.interactions[0]}


def to_request(body: ChatCompletionRequest) -> Request:
    """The aeth :class:`Request` for ``body``: the last message (a user's) is the prompt, earlier
    ones the history; images must come as data URLs (the server reads no files and fetches nothing)."""
    from aeth.images import ImageError, image_bytes

    history: list[dict[str, str]] = []
    images: list[bytes] = []
    last = len(body.messages) - 1
    for i, m in enumerate(body.messages):
        parts = m.content if isinstance(m.content, list) else [m.content or ""]
        text = []
        for j, part in enumerate(parts):
            if isinstance(part, str):
                text.append(part)
            elif isinstance(part, ImagePart):
                if m.role != "user":
                    raise APIError(400, f"messages[{i}]: only a user's message may carry images", param=f"messages.{i}.content")
                if not part.image_url.url.startswith("data:"):
                    raise APIError(400, f"messages[{i}].content[{j}]: send the image as a data URL "
                                        "(data:image/png;base64,...); the server fetches nothing",
                                   param=f"messages.{i}.content.{j}.image_url.url", code="invalid_image_url")
                try:
                    images.append(image_bytes(part.image_url.url, len(images)))
                except ImageError as e:
                    raise APIError(400, str(e), param=f"messages.{i}.content.{j}.image_url.url") from None
            else:
                text.append(part.text)
        role = "system" if m.role == "developer" else m.role
        if i < last:
            history.append({"role": role, "content": "".join(text)})
        elif role != "user":
            raise APIError(400, f"the last message must be the user's (got role {m.role!r}): aeth answers a user's "
                                "message", param=f"messages.{i}.role")
        else:
            prompt = "".join(text)
    if not prompt.strip():
        raise APIError(400, "the last message is empty: give the user's prompt", param=f"messages.{last}.content")
    seed = None if body.seed is None else body.seed % 2**63
    return Request(prompt=prompt, history=tuple(history), images=tuple(images), temperature=body.temperature,
                   top_p=body.top_p, max_tokens=body.max_completion_tokens or body.max_tokens, seed=seed,
                   metadata={"user": body.user} if body.user else {})


class Completions:
    """Answers chat completion bodies for one server."""

    def __init__(self, app: Any, engine: Engine, metrics: Metrics, limiter: RateLimiter):
        from aeth.store.cost import Pricing

        self.app, self.engine, self.metrics, self.limiter = app, engine, metrics, limiter
        self.pricing = Pricing.from_config(app.config)
        # answers under quality control: chosen among candidates that ``engine`` decodes (aeth.quality)
        self.controlled = HookEngine(app, hook=self._controlled)
        for spec in app.specialists().values():
            quality_for(app, spec)  # a method a specialist cannot use fails the start, not its requests

    # ---- before generating ----------------------------------------------------------------------

    def choose(self, body: ChatCompletionRequest, request: Request,
               key: Any) -> tuple[Specialist, Bid, list[Bid], str | None, list[Any]]:
        """Who answers: the router for ``aeth`` (one specialist, or several composing the answer when
        the prompt's requests belong to different ones: the parts), else the named specialist (and version)."""
        from aeth.models.adapters import AdapterError

        allowed = getattr(key, "specialists", None) or None
        if body.model == ROUTED:
            try:
                bids = self.app.bids(request)
            except AethError as e:
                raise APIError(400, str(e), code="routing_failed") from None
            usable = [b for b in bids if allowed is None or b.specialist in allowed]
            if not usable:
                what = "no specialist this key may use bid for it" if bids else "no router made a bid"
                raise APIError(403 if bids else 400, f"cannot route this request: {what}", code="model_not_allowed")
            spec = self.app.specialist(usable[0].specialist)
            parts = plan(self.app, request, usable)
            if parts and all(allowed is None or p.specialist in allowed for p in parts):
                for part in parts:
                    self.check_input(replace(request, prompt=part.prompt), self.app.specialist(part.specialist), key)
                return self.app.specialist(parts[0].specialist), parts[0].bid, bids, None, parts
            self.check_input(request, spec, key)
            return spec, usable[0], bids, None, []
        name, _, version = body.model.partition("@")
        try:
            spec = self.app.specialist(name)
        except SpecialistError as e:
            raise APIError(404, f"model {body.model!r} does not exist: {e} Use 'aeth' to let aeth route, or see "
                                "GET /v1/models", code="model_not_found", param="model") from None
        if allowed is not None and spec.name not in allowed:
            raise APIError(403, f"this API key may not use {spec.name!r} (it may use {', '.join(sorted(allowed))})",
                           code="model_not_allowed", param="model")
        if version and version != "base":
            try:
                self.app.adapters.get(spec.name, version)
            except AdapterError as e:
                raise APIError(404, f"model {body.model!r} does not exist: {e}", code="model_not_found", param="model") from None
        self.check_input(request, spec, key)
        return spec, Bid(spec.name, 1.0, "named in the request's model", "user"), [], version or None, []

    def check_input(self, request: Request, spec: Specialist, key: Any) -> None:
        """The input policy for ``spec``: a refused request is logged (finish_reason
        "content_filter", the rule that fired) and answered 400 with code ``content_filter``."""
        try:
            self.app.check_input(request, spec)
        except PolicyBlocked as e:
            self.app.log_blocked(request, e, "serve", key_id=getattr(key, "id", None), key=getattr(key, "name", None))
            self.metrics.blocked.labels(spec.name, e.stage).inc()
            raise APIError(400, str(e), code="content_filter", reason="content_filter") from None

    async def start(self, body: ChatCompletionRequest, key: Any) -> Completion:
        """Validate, route and submit ``body``'s ``n`` generations (raises :class:`APIError`)."""
        started = time.perf_counter()
        request = to_request(body)
        if key is not None:
            request.metadata["api_key"] = key.name  # the key's own policy (policy.key:<name>.*)
        spec, bid, bids, adapter, parts = await run_in_threadpool(self.choose, body, request, key)
        interactions = [new_id() for _ in range(body.n)]
        done = Completion(body, key, request, spec, bid, bids, adapter, interactions, started,
                          id=f"chatcmpl-{interactions[0]}", parts=parts)
        self.metrics.routes.labels(done.name, "composed" if parts else "routed" if body.model == ROUTED else "named").inc()
        sampling = self.app.sampling(spec, request)
        mask = self.app.policy(spec, request).masker()
        engine = self.engine if quality_for(self.app, spec)[0] == "off" else self.controlled
        if parts:  # each part answered by its specialist as `aeth run` answers it (its own policy and quality)
            engine, mask = HookEngine(self.app, hook=partial(self._composed, parts, bids)), None
        for i in range(body.n):
            seeded = sampling if sampling.seed is None else type(sampling)(**{**sampling.__dict__, "seed": sampling.seed + i})
            job = Job(spec, request, seeded, adapter=adapter, stop=body.stops(), mask=mask,
                      metadata={"interaction": interactions[i], "key": getattr(key, "id", None)})
            try:
                done.generations.append(await run_in_threadpool(engine.submit, job))
            except BaseException as e:
                for g in done.generations:
                    g.cancel()
                raise _api_error(e) from None
        return done

    def _controlled(self, specialist: Specialist, request: Request, context: Any) -> Any:
        """The ``generate`` of :attr:`controlled`: the answer quality control chooses among
        candidates decoded by :attr:`engine` (one batch), as one chunk."""
        from aeth.quality import controlled

        method, k = quality_for(self.app, specialist)

        def stream():
            text, stats, report = controlled(self.engine, method, k, specialist, request, context.sampling,
                                             adapter=context.adapter, cancel=context.cancel)
            context.stats.update(stats, quality=report)
            yield text

        return stream()

    def _composed(self, parts: list[Any], bids: list[Bid], specialist: Specialist, request: Request, context: Any) -> Any:
        """The ``generate`` of a composed answer (:mod:`aeth.compose`): each part's answer in turn;
        a part its specialist's output policy blocks ends the answer with "content_filter"."""
        answer = self.app.compose(replace(request, seed=context.sampling.seed), parts, bids, cancel=context.cancel,
                                  check=False)

        def stream():
            try:
                yield from answer
            except PolicyBlocked as e:
                context.stats.update(finish_reason="content_filter",
                                     blocked={"stage": e.stage, "plugin": e.plugin, "rule": e.reason})
                return
            r = answer.response
            context.stats.update(tokens_in=r.tokens_in, tokens_out=r.tokens_out, finish_reason=r.finish_reason,
                                 contributors=r.contributors, machine_seconds=r.seconds - r.load_seconds)

        return stream()

    # ---- after generating -----------------------------------------------------------------------

    async def finish(self, done: Completion, status: int = 200) -> None:
        """Check the answers, log each as an interaction (committed before this returns), charge the
        key's token budget and count the metrics. ``done.texts`` must hold the answers."""
        done.finish = []
        for i, (gen, text) in enumerate(zip(done.generations, done.texts, strict=True)):
            reason = {"length": "length", "cancelled": "cancelled"}.get(gen.stats.get("finish_reason"), "stop")
            response = Response(id=done.request.id, specialist=done.name, text=text, reason=done.bid.reason,
                                score=done.bid.score, tokens_in=gen.stats.get("tokens_in", 0),
                                tokens_out=gen.stats.get("tokens_out", 0), finish_reason=reason,
                                adapter=gen.stats.get("adapter"))
            try:
                if gen.stats.get("blocked"):  # a composed answer's part (each part was checked by its own policy)
                    raise PolicyBlocked(gen.stats["blocked"]["plugin"], gen.stats["blocked"]["rule"], "output")
                if not done.parts:
                    self.app.check_output(done.request, response, done.specialist)
            except PolicyBlocked as e:
                reason = "content_filter"
                done.blocked[i] = {"stage": e.stage, "plugin": e.plugin, "rule": e.reason}
                done.texts[i] = ""  # withheld from the response (a stream's text already went out) and the log
                self.metrics.blocked.labels(done.name, e.stage).inc()
            done.finish.append(reason)
        seconds = time.perf_counter() - done.started
        await run_in_threadpool(self._log, done, seconds)
        usage = done.usage()
        if done.key is not None:
            self.limiter.charge(done.key.id, usage["total_tokens"])
        adapter = done.generations[0].stats.get("adapter") if done.generations else None
        self.metrics.answered(status, done.name, adapter, done.generations[0].stats, seconds)
        for gen in done.generations[1:]:
            self.metrics.tokens.labels("out", done.name).inc(gen.stats.get("tokens_out", 0))

    def abandon(self, done: Completion, texts: list[list[str]]) -> None:
        """The client left before the answer was complete: cancel the generations and, once they
        stopped (within one step), log what they generated with finish_reason "cancelled". Done in a
        thread, since the client's task is being cancelled and could not await a commit."""
        for g in done.generations:
            g.cancel()

        def log() -> None:
            try:
                done.texts = ["".join([*sent, *g]).strip() for sent, g in zip(texts, done.generations, strict=True)]
            except BaseException:  # noqa: BLE001  (a generation that failed: log what was sent)
                done.texts = ["".join(sent).strip() for sent in texts]
            done.finish = ["cancelled"] * len(done.generations)
            try:
                self._log(done, time.perf_counter() - done.started)
            except Exception as e:  # noqa: BLE001  (nothing was acknowledged; say so and go on)
                from aeth.plugins import warn

                warn(f"a cancelled answer was not logged: {e}")

        threading.Thread(target=log, daemon=True, name=f"aeth-abandon-{done.id}").start()

    def _log(self, done: Completion, seconds: float) -> None:
        """Commit each answer to the interaction log (a failure fails the request: nothing is
        acknowledged that is not stored), and add what it cost to the metrics."""
        from aeth.generation.prompt import build_messages
        from aeth.serving.batching import merge_system
        from aeth.store import Interaction
        from aeth.store.answers import route_of

        messages = merge_system(build_messages(done.specialist, done.request))  # as the model was sent them
        if done.parts:  # each contributor had its own system prompt: the user's turns
            messages = [m for m in messages if m["role"] != "system"]
        route = route_of(done.bid, done.bids)
        for i, (gen, text) in enumerate(zip(done.generations, done.texts, strict=True)):
            s = gen.stats
            row = Interaction(messages=messages, answer=text, specialist=done.name, source="serve",
                              model=s.get("model"), adapter=s.get("adapter"), sampling=dict(gen.job.sampling.__dict__),
                              tokens_in=s.get("tokens_in", 0), tokens_out=s.get("tokens_out", 0),
                              latency_s=round(seconds, 4), ttft_s=s.get("ttft_s"),
                              machine_seconds=s.get("machine_seconds", 0.0), finish_reason=done.finish[i],
                              key_id=getattr(done.key, "id", None), route=route,
                              group_id=done.id if len(done.generations) > 1 else None, choice_index=i,
                              metadata={**done.request.metadata, **({"blocked": done.blocked[i]} if i in done.blocked else {}),
                                        **({"quality": s["quality"]} if s.get("quality") else {}),
                                        **({"contributors": s["contributors"]} if s.get("contributors") else {})},
                              id=done.interactions[i])
            if self.app.config.get("store.log_interactions", True):
                self.app.store.record(self.app.for_storage(row, getattr(done.key, "name", None)))
            self.metrics.cost.labels("aeth", "aeth").inc(self.pricing.aeth_usd(row.machine_seconds))
            for model in self.pricing.compare:
                usd = self.pricing.api_usd(model, row.tokens_in, row.tokens_out)
                if usd is not None:
                    self.metrics.cost.labels("api", model).inc(usd)

    def response(self, done: Completion) -> dict[str, Any]:
        """OpenAI's ``chat.completion`` object (plus ``aeth``) for a finished completion."""
        return {"id": done.id, "object": "chat.completion", "created": done.created, "model": done.body.model,
                "system_fingerprint": None,
                "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                             "logprobs": None, "finish_reason": _openai_finish(done.finish[i])}
                            for i, text in enumerate(done.texts)],
                "usage": done.usage(), "aeth": done.aeth(final=True)}

    def chunk(self, done: Completion, index: int | None, delta: dict[str, Any] | None = None,
              finish: str | None = None, **extra: Any) -> dict[str, Any]:
        """One ``chat.completion.chunk`` of a streamed answer."""
        choices = [] if index is None else [{"index": index, "delta": delta or {}, "logprobs": None,
                                             "finish_reason": _openai_finish(finish) if finish else None}]
        return {"id": done.id, "object": "chat.completion.chunk", "created": done.created, "model": done.body.model,
                "system_fingerprint": None, "choices": choices, **extra}


def _openai_finish(reason: str) -> str:
    """OpenAI's finish reasons: stop, length, content_filter (a cancelled answer ends as "stop")."""
    return reason if reason in ("length", "content_filter") else "stop"


def _api_error(e: BaseException) -> APIError:
    """What a submission's failure means for the client."""
    from aeth.errors import ContextOverflow, ModelError
    from aeth.models.adapters import AdapterError

    if isinstance(e, APIError):
        return e
    if isinstance(e, (ContextOverflow, InputTooLong)):
        return APIError(400, str(e), code="context_length_exceeded", param="messages", reason="context")
    if isinstance(e, AdapterError):
        return APIError(404, str(e), code="model_not_found", param="model")
    if isinstance(e, PolicyBlocked):
        return APIError(400, str(e), code="content_filter", reason="content_filter")
    if isinstance(e, ModelError):
        return APIError(500, f"the model cannot be loaded: {e}", code="model_error", reason="model_error")
    if isinstance(e, AethError):
        return APIError(400, str(e), code="invalid_request")
    raise e
