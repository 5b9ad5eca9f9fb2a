"""The run flow as a library: check_input -> route -> generate (streamed) -> check_output.

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
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from aeth import runtime
from aeth.config import Config
from aeth.errors import PluginError, PolicyBlocked, RoutingError, SpecialistError
from aeth.plugins import PluginHost, get_host, warn
from aeth.request import Bid, GenerationContext, Request, Response, Sampling
from aeth.specialist import Specialist


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

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        context = GenerationContext(config=self.app.config, sampling=self.app.sampling(self.specialist, self.request),
                                    models=runtime.models(), chat=self.chat, cancel=self.cancel)
        stream = self.app.host.pm.hook.generate(specialist=self.specialist, request=self.request, context=context)
        if stream is None:
            raise PluginError("no plugin implements the generate hook (aeth's default generator was disabled?)")
        ready = time.perf_counter()  # the default generator loads the model before returning its stream
        parts = []
        for chunk in stream:
            parts.append(chunk)
            yield chunk
        stats = context.stats
        done = time.perf_counter()
        self.response = Response(
            id=self.request.id, specialist=self.specialist.name, text="".join(parts).strip(), reason=self.bid.reason,
            score=self.bid.score, tokens_in=stats.get("tokens_in", 0), tokens_out=stats.get("tokens_out", 0),
            seconds=round(done - started, 3), load_seconds=round(ready - started, 3),
            finish_reason=stats.get("finish_reason", ""), adapter=stats.get("adapter"),
        )
        self.app.check_output(self.request, self.response)

    def text(self) -> str:
        """Consume the whole stream and return the answer's text."""
        for _ in self:
            pass
        return self.response.text


class Aeth:
    """aeth as a library: specialists, routing and streamed answers, with plugins loaded."""

    def __init__(self, config: Config | None = None, host: PluginHost | None = None):
        if config is not None:
            runtime.set_config(config)
        self.config = runtime.config()
        self.host = host or get_host()

    def specialists(self) -> dict[str, Specialist]:
        """Every registered specialist by name."""
        return self.host.specialists()

    def specialist(self, name: str) -> Specialist:
        """The specialist called ``name``; an unknown name lists the installed ones."""
        specs = self.specialists()
        if name in specs:
            return specs[name]
        near = difflib.get_close_matches(name, list(specs), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SpecialistError(f"unknown specialist {name!r}.{hint} Installed: {', '.join(sorted(specs)) or 'none'} "
                              "(see `aeth specialists`)")

    def check_input(self, request: Request) -> None:
        """Run every ``check_input`` hook; the first block raises :class:`PolicyBlocked`."""
        for plugin, verdict in self.host.call_each("check_input", request=request):
            if verdict:
                raise PolicyBlocked(plugin, str(verdict), "input")

    def check_output(self, request: Request, response: Response) -> None:
        """Run every ``check_output`` hook; the first block raises :class:`PolicyBlocked`."""
        for plugin, verdict in self.host.call_each("check_output", request=request, response=response):
            if verdict:
                raise PolicyBlocked(plugin, str(verdict), "output")

    def bids(self, request: Request) -> list[Bid]:
        """Every router's bids for ``request``, best first (ties keep plugin order)."""
        specs = everyone = self.specialists()
        # a request with images goes to a specialist that sees; one without, to one that reads
        specs = {n: s for n, s in specs.items() if s.accepts_images == bool(request.images)}
        if request.images and not specs:
            raise RoutingError("the request has images, but no installed specialist accepts images: install one "
                               "(e.g. `pip install aetherial-vision`) or name one with --specialist")
        bids: list[Bid] = []
        for plugin, result in self.host.call_each("route", request=request, specialists=specs):
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
                        repetition_penalty=d.repetition_penalty, seed=pick("seed", None))

    def stream(self, request: Request, *, chat: Any = None, cancel: Callable[[], bool] | None = None) -> Answer:
        """Check, route and start answering ``request``; iterate the result for text.

        ``chat`` (an :class:`aeth.chat.ChatMemory`) makes the request a turn of a conversation whose
        KV caches persist between turns; ``cancel`` is polled between tokens and ends the answer
        early when it returns true.
        """
        if not request.prompt or not request.prompt.strip():
            raise SpecialistError("the prompt is empty: give one as an argument or on standard input")
        self.check_input(request)
        bid, bids = self.route(request)
        return Answer(self, request, self.specialist(bid.specialist), bid, bids, chat=chat, cancel=cancel)

    def run(self, request: Request) -> Response:
        """Answer ``request`` completely and return the response."""
        answer = self.stream(request)
        answer.text()
        return answer.response
