"""The run flow as a library: route -> check_input -> generate (streamed, masked) -> check_output.

Applications use :class:`Aeth` directly; the CLI is a thin layer over it::

    from aeth.app import Aeth
    from aeth import Request

    answer = Aeth().stream(Request("Reverse a list in Python"))
    for chunk in answer:
        print(chunk, end="")
    print(answer.response.specialist, answer.response.tokens_out)
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aeth.compose import ComposedAnswer, plan
from aeth.config import Config, load_config
from aeth.errors import PluginError, PolicyBlocked, RoutingError, SpecialistError
from aeth.models.adapters import AdapterStore
from aeth.plugins import PluginHost, default_host, warn
from aeth.quality import quality_for
from aeth.quiet import quiet_libraries
from aeth.registry import Registry
from aeth.request import Bid, GenerationContext, Request, Response, Sampling
from aeth.safety.policy import MaskedText, Policy, policy_for, redact_interaction
from aeth.specialist import Specialist

if TYPE_CHECKING:
    from aeth.models.pool import ModelPool
    from aeth.store import Interaction, Store


class Answer:
    """A streamed answer: iterate for text chunks; ``response`` is set once the stream ends.

    ``specialist`` and ``bid`` are known before the first chunk, so a caller can say who answers
    and why while the model is still thinking.
    """

    def __init__(self, app: Aeth, request: Request, specialist: Specialist, bid: Bid, bids: list[Bid],
                 chat: Any = None, cancel: Callable[[], bool] | None = None):
        self.app, self.request, self.specialist, self.bid, self.bids = app, request, specialist, bid, bids
        self.chat, self.cancel = chat, cancel
        self.response: Response | None = None
        self.context: GenerationContext | None = None  #: set when the stream starts (sampling, the generator's stats)
        self.ttft_s: float | None = None  #: seconds from the start of the stream to its first chunk

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        method, k = quality_for(self.app, self.specialist)
        if method != "off" and self.chat is None:  # a chat turn feeds its lane's cache: answered as generated
            yield from self._controlled(method, k, started)
            return
        context = self.context = GenerationContext(self.app, self.app.sampling(self.specialist, self.request),
                                                   chat=self.chat, cancel=self.cancel)
        stream = self.app.hook.generate(specialist=self.specialist, request=self.request, context=context)
        if stream is None:
            raise PluginError("no plugin implements the generate hook (aeth's default generator was disabled?)")
        ready = time.perf_counter()  # the default generator loads the model before returning its stream
        mask = self.app.policy(self.specialist, self.request).masker()
        masked = MaskedText(mask) if mask else None
        parts = []
        for chunk in stream:
            if self.ttft_s is None:
                self.ttft_s = round(time.perf_counter() - started, 4)
            if masked is not None:
                chunk = masked.push(chunk)
            parts.append(chunk)
            yield chunk
        rest = masked.flush() if masked is not None else ""
        if rest:
            parts.append(rest)
            yield rest
        stats = context.stats
        done = time.perf_counter()
        self.response = Response(
            id=self.request.id, specialist=self.specialist.name, text="".join(parts).strip(), reason=self.bid.reason,
            score=self.bid.score, tokens_in=stats.get("tokens_in", 0), tokens_out=stats.get("tokens_out", 0),
            seconds=round(done - started, 3), load_seconds=round(ready - started, 3),
            finish_reason=stats.get("finish_reason", ""), adapter=stats.get("adapter"),
        )
        self.app.check_output(self.request, self.response, self.specialist)

    def _controlled(self, method: str, k: int, started: float) -> Iterator[str]:
        """The answer chosen by quality control (:mod:`aeth.quality`): its candidates decoded
        together by an engine made for it, then the chosen one, masked, in one piece."""
        from aeth.quality import controlled
        from aeth.serving.batching import BatchingEngine

        sampling = self.app.sampling(self.specialist, self.request)
        context = self.context = GenerationContext(self.app, sampling, cancel=self.cancel)
        engine = BatchingEngine(self.app)
        try:
            text, stats, report = controlled(engine, method, k, self.specialist, self.request, sampling, cancel=self.cancel)
        finally:
            engine.close()
        context.stats.update(stats)
        mask = self.app.policy(self.specialist, self.request).masker()
        text = mask(text) if mask else text
        self.ttft_s = round(time.perf_counter() - started, 4)
        if text:
            yield text
        self.response = Response(
            id=self.request.id, specialist=self.specialist.name, text=text, reason=self.bid.reason,
            score=self.bid.score, tokens_in=stats.get("tokens_in", 0), tokens_out=stats.get("tokens_out", 0),
            seconds=round(time.perf_counter() - started, 3), finish_reason=stats.get("finish_reason", ""),
            adapter=stats.get("adapter"), quality=report)
        self.app.check_output(self.request, self.response, self.specialist)

    def text(self) -> str:
        """Consume the whole stream and return the answer's text."""
        for _ in self:
            pass
        return self.response.text


class Aeth:
    """aeth as a library: one application with its own config, plugins, models and adapters.

    Everything below it receives the application (hook arguments, :attr:`GenerationContext.app`)
    instead of reading process-wide state, so two applications with different configs live side
    by side in one process (a server and a learner, or two tests). ``host`` defaults to the
    process's installed plugins (:func:`aeth.plugins.default_host`); what they register is
    collected per application, under its config.
    """

    def __init__(self, config: Config | None = None, host: PluginHost | None = None):
        quiet_libraries()  # what the ML libraries say to their own developers is not for this app's users
        self.config = config if config is not None else load_config()
        self.host = host or default_host()
        self.adapters = AdapterStore(self.config.home)  #: adapter versions under this app's home
        self._lock = threading.RLock()  # worker threads (teachers, servers) may ask for the pool at once
        self._models: ModelPool | None = None
        self._registry: Registry | None = None
        self._store: Store | None = None
        self._state: dict[str, Any] = {}

    @property
    def models(self) -> ModelPool:
        """This application's model pool: each base model loaded once, on first use, whichever thread asks."""
        with self._lock:
            if self._models is None:
                from aeth.models.pool import ModelPool

                self._models = ModelPool(self.config)
            return self._models

    @property
    def store(self) -> Store:
        """This application's database (interactions, feedback, API keys), opened from ``store.url`` on first use."""
        with self._lock:
            if self._store is None:
                from aeth.store import Store

                self._store = Store.open(self.config.get("store.url"), self.config.home)
            return self._store

    def log_interaction(self, interaction: Interaction, key: str | None = None) -> str | None:
        """Record ``interaction`` (redacted as :meth:`for_storage` says, for API key ``key``) in
        :attr:`store` and return its id; ``None`` when ``store.log_interactions`` is false, or when
        recording failed (one warning says why: the answer itself is never lost)."""
        if not self.config.get("store.log_interactions", True):
            return None
        try:
            return self.store.record(self.for_storage(interaction, key))
        except Exception as e:  # noqa: BLE001  (a broken database must not break answering)
            warn(f"the answer was not logged: {e}")
            return None

    def log_answer(self, answer: Answer, source: str, *, key_id: str | None = None,
                   metadata: dict[str, Any] | None = None) -> str | None:
        """Record a finished :class:`Answer` (``source``: "run", "chat" or "serve"); its interaction id, or
        ``None`` (see :meth:`log_interaction`)."""
        if not self.config.get("store.log_interactions", True) or answer.response is None:
            return None
        from aeth.store.answers import interaction_from_answer

        try:
            interaction = interaction_from_answer(answer, source, key_id=key_id, metadata=metadata)
        except Exception as e:  # noqa: BLE001
            warn(f"the answer was not logged: {e}")
            return None
        return self.log_interaction(interaction)

    def feedback(self, interaction_id: str, kind: str, value: Any = None, *, comment: str | None = None,
                 feedback_id: str | None = None, source: str = "user") -> str:
        """Store feedback on an answer for continuous learning and return its id (committed on return).

        ``interaction_id`` is the answer's id or a unique start of it. ``kind`` and ``value``:
        ``"thumbs"`` True/False, ``"rating"`` 1-5 (a verifier's: a reward 0-1), ``"correction"``
        the better answer, ``"preference"`` ``{"chosen": ID, "rejected": ID}`` (two answers to the
        same prompt, one of them this one; ids may be unique prefixes), ``"comment"`` text.
        ``feedback_id`` makes a retry idempotent. Raises :class:`~aeth.store.UnknownInteraction`
        or :class:`~aeth.store.StoreError` with what to fix::

            app.feedback("3f2a9c", "thumbs", True)
            app.feedback(worse, "preference", {"chosen": better, "rejected": worse})
        """
        store = self.store
        iid = store.find(interaction_id).id
        if kind == "preference" and isinstance(value, dict):  # full ids, so the store can check the pair
            value = {k: store.find(v).id if k in ("chosen", "rejected") and isinstance(v, str) and v else v
                     for k, v in value.items()}
        return store.record_feedback(iid, kind, value, comment=comment, feedback_id=feedback_id, source=source)

    def close(self) -> None:
        """Release what this application holds open (its database connections)."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    @property
    def hook(self) -> Any:
        """The plugin host's hook caller (``app.hook.generate(...)``); pass ``app=self`` where the spec asks."""
        return self.host.pm.hook

    @property
    def registry(self) -> Registry:
        """What the plugins registered under this config (rebuilt after a plugin comes or goes)."""
        with self._lock:
            if self._registry is None or self._registry.generation != self.host.generation:
                self._registry = Registry(self)
            return self._registry

    def state(self, key: str, make: Callable[[], Any]) -> Any:
        """A value a plugin keeps for this application (made by ``make()`` on first use), e.g. a router
        built from this application's settings. ``key`` should start with the plugin's name."""
        with self._lock:
            if key not in self._state:
                self._state[key] = make()
            return self._state[key]

    def specialists(self) -> dict[str, Specialist]:
        """Every registered specialist by name."""
        return self.registry.specialists()

    def teachers(self) -> dict[str, Any]:
        """Every registered distillation teacher by name."""
        return self.registry.teachers()

    def describe_plugins(self, include_defaults: bool = False) -> list[dict]:
        """What ``aeth plugins`` prints: each plugin's distribution, version, hooks and registrations."""
        registry = self.registry
        registry.specialists()
        registry.teachers()
        return self.host.describe(registry.registered, include_defaults)

    def specialist(self, name: str) -> Specialist:
        """The specialist called ``name``; an unknown name lists the installed ones."""
        specs = self.specialists()
        if name in specs:
            return specs[name]
        near = difflib.get_close_matches(name, list(specs), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SpecialistError(f"unknown specialist {name!r}.{hint} Installed: {', '.join(sorted(specs)) or 'none'} "
                              "(see `aeth specialists`)")

    def policy(self, specialist: Specialist | None, request: Request | None = None) -> Policy:
        """The content policy for ``request`` to ``specialist`` (its plugin's, the config's
        ``policy.*``, the API key's named in ``request.metadata["api_key"]``; see :mod:`aeth.safety.policy`)."""
        return policy_for(self, specialist, request.metadata.get("api_key") if request is not None else None)

    def check_input(self, request: Request, specialist: Specialist | None = None) -> None:
        """Run every ``check_input`` hook for ``request`` to ``specialist`` (the one routing chose);
        the first block raises :class:`PolicyBlocked`."""
        for plugin, verdict in self.host.call("check_input", request=request, specialist=specialist, app=self):
            if verdict:
                raise PolicyBlocked(plugin, str(verdict), "input", specialist=getattr(specialist, "name", None))

    def check_output(self, request: Request, response: Response, specialist: Specialist | None = None) -> None:
        """Run every ``check_output`` hook; the first block raises :class:`PolicyBlocked`."""
        for plugin, verdict in self.host.call("check_output", request=request, response=response,
                                              specialist=specialist, app=self):
            if verdict:
                raise PolicyBlocked(plugin, str(verdict), "output", specialist=getattr(specialist, "name", None))

    def for_storage(self, interaction: Interaction, key: str | None = None) -> Interaction:
        """``interaction`` as it may be stored: personal data masked where its specialist's policy
        (for API key ``key``) redacts (``store.redact``, ``policy.<specialist>.redact``)."""
        if policy_for(self, self.specialists().get(interaction.specialist), key).redact:
            return redact_interaction(interaction)
        return interaction

    def log_blocked(self, request: Request, blocked: PolicyBlocked, source: str, *, key_id: str | None = None,
                    key: str | None = None) -> str | None:
        """Record a request a policy refused (finish_reason "content_filter", no answer, the rule
        under ``metadata["blocked"]``); its interaction id, or ``None`` (see :meth:`log_interaction`)."""
        from aeth.generation.prompt import build_messages
        from aeth.store import Interaction

        spec = self.specialists().get(blocked.specialist or "")
        messages = build_messages(spec, request) if spec is not None else [
            *request.history, {"role": "user", "content": request.prompt}]
        row = Interaction(messages=list(messages), answer="", specialist=blocked.specialist or "", source=source,
                          finish_reason="content_filter", key_id=key_id,
                          metadata={**request.metadata, "blocked": {"stage": blocked.stage, "plugin": blocked.plugin,
                                                                    "rule": blocked.reason}})
        return self.log_interaction(row, key=key)

    def bids(self, request: Request) -> list[Bid]:
        """Every router's bids for ``request``, best first; a tie goes to the bid pluggy returned
        first (a ``tryfirst`` implementation, else the most recently registered plugin)."""
        specs = everyone = self.specialists()
        # a request with images goes to a specialist that sees; one without, to one that reads
        specs = {n: s for n, s in specs.items() if s.accepts_images == bool(request.images)}
        if request.images and not specs:
            raise RoutingError("the request has images, but no installed specialist accepts images: install one "
                               "(e.g. `pip install aetherial-vision`) or name one with --specialist")
        bids: list[Bid] = []
        for plugin, result in self.host.call("route", request=request, specialists=specs, app=self):
            for bid in result or []:
                if isinstance(bid, Bid) and bid.specialist in everyone and bid.specialist not in specs:
                    continue  # a specialist for the other kind of request (with or without images)
                if not isinstance(bid, Bid) or bid.specialist not in specs:
                    warn(f"plugin {plugin!r} bid for {getattr(bid, 'specialist', bid)!r}, which is not a registered specialist; ignored")
                    continue
                bids.append(bid if bid.plugin else replace(bid, plugin=plugin))
        return sorted(bids, key=lambda b: -b.score)

    def route(self, request: Request) -> tuple[Bid, list[Bid]]:
        """The winning bid and all bids; ``request.specialist`` bypasses routing."""
        if request.specialist:
            spec = self.specialist(request.specialist)
            return Bid(spec.name, 1.0, "chosen with --specialist", "user"), []
        bids = self.bids(request)
        if not bids:
            raise RoutingError("no specialist could be chosen: no router made a bid. Name one with --specialist "
                               f"(installed: {', '.join(sorted(self.specialists())) or 'none'})")
        return bids[0], bids

    def sampling(self, specialist: Specialist, request: Request) -> Sampling:
        """Request options, else the user's config, else the specialist's defaults."""
        d = specialist.generation

        def pick(name: str, default):
            value = getattr(request, name, None)
            return value if value is not None else self.config.get(f"generation.{name}", default)

        return Sampling(temperature=pick("temperature", d.temperature), top_p=pick("top_p", d.top_p),
                        top_k=pick("top_k", d.top_k), max_tokens=pick("max_tokens", d.max_tokens),
                        repetition_penalty=pick("repetition_penalty", d.repetition_penalty), seed=pick("seed", None))

    def stream(self, request: Request, *, chat: Any = None, cancel: Callable[[], bool] | None = None) -> Answer | ComposedAnswer:
        """Check, route and start answering ``request``; iterate the result for text.

        ``chat`` (an :class:`aeth.chat.ChatMemory`) makes the request a turn of a conversation whose
        KV caches persist between turns; ``cancel`` is polled between tokens and ends the answer
        early when it returns true.
        """
        if not request.prompt or not request.prompt.strip():
            raise SpecialistError("the prompt is empty: give one as an argument or on standard input")
        bid, bids = self.route(request)
        parts = plan(self, request, bids) if chat is None else None
        if parts:
            return self.compose(request, parts, bids, cancel=cancel)
        specialist = self.specialist(bid.specialist)
        self.check_input(request, specialist)
        return Answer(self, request, specialist, bid, bids, chat=chat, cancel=cancel)

    def compose(self, request: Request, parts: list[Any], bids: list[Bid], *, cancel: Callable[[], bool] | None = None,
                check: bool = True) -> ComposedAnswer:
        """The reply of several specialists to ``request``, one :class:`Answer` per
        :class:`~aeth.compose.Part` (see :mod:`aeth.compose`); each part passes its own
        specialist's input policy first (``check=False``: already checked)."""
        answers = []
        for part in parts:
            specialist = self.specialist(part.specialist)
            sub = replace(request, prompt=part.prompt, specialist=None)
            if check:
                self.check_input(sub, specialist)
            answers.append(Answer(self, sub, specialist, part.bid, bids, cancel=cancel))
        return ComposedAnswer(self, request, parts, answers, bids)

    def run(self, request: Request) -> Response:
        """Answer ``request`` completely and return the response."""
        answer = self.stream(request)
        answer.text()
        return answer.response
