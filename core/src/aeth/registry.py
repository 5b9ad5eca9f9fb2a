"""What the plugins registered for one application: its specialists and teachers, and who added what.

Built from the ``register_specialists`` / ``register_teachers`` hooks (called through pluggy with
the application, so a plugin registers under that application's config). Core owns validation and
clashes. When two plugins register one name, the one that already serves it keeps it, so a newly
installed package never silently takes a name: aeth's own defaults first, then the distribution
installed first, then the plugin registered first. The plugin that lost gets one warning naming
both and the config key that chooses explicitly (``specialists.<name>.plugin: DIST``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aeth.plugins import calling_plugin, warn
from aeth.specialist import Specialist

if TYPE_CHECKING:
    from aeth.app import Aeth

#: fewer routing examples than this and the router rarely picks a specialist (SpecialistContract asks as many)
MIN_ROUTING_EXAMPLES = 40


class Registry:
    """Specialists and teachers of one :class:`~aeth.app.Aeth`, each collected on first use."""

    def __init__(self, app: Aeth):
        self.app = app
        self.generation = app.host.generation  #: the host's generation this was built for
        #: plugin name -> {"specialists": [...], "teachers": [...]}: what each plugin's registrations won
        self.registered: dict[str, dict[str, list[str]]] = {
            name: {"specialists": [], "teachers": []} for name in app.host.infos}
        self._specialists: dict[str, Specialist] | None = None
        self._teachers: dict[str, Any] | None = None

    def specialists(self) -> dict[str, Specialist]:
        """Every valid specialist by name, each stamped with the plugin that registered it."""
        if self._specialists is None:
            claims = self._collect("register_specialists", self._specialist_callback)
            self._specialists = self._resolve("specialists", "specialist", claims)
        return self._specialists

    def teachers(self) -> dict[str, Any]:
        """Every teacher backend by name."""
        if self._teachers is None:
            def callback(add: Callable) -> Callable:
                return lambda name, teacher: add(name, teacher)

            self._teachers = self._resolve("teachers", "teacher", self._collect("register_teachers", callback))
        return self._teachers

    # ---- collecting ------------------------------------------------------------------------

    def _collect(self, hook: str, callback: Callable[[Callable], Callable]) -> dict[str, list[tuple[str, Any]]]:
        """``{name: [(plugin, item), ...]}`` from every implementation of ``hook``, in registration order."""
        claims: dict[str, list[tuple[str, Any]]] = {}

        def add(name: str, item: Any) -> None:
            claims.setdefault(name, []).append((calling_plugin() or "?", item))

        self.app.host.call(hook, register=callback(add), app=self.app)
        return claims

    def _specialist_callback(self, add: Callable) -> Callable:
        def register(spec: Specialist) -> None:
            plugin = calling_plugin() or "?"
            if not isinstance(spec, Specialist):
                warn(f"plugin {plugin!r} registered {type(spec).__name__}, not a Specialist; ignored")
                return
            problems = spec.problems()
            if problems:
                listed = "; ".join(f"field {f}: {m}" for f, m in problems)
                warn(f"plugin {plugin!r} registered invalid specialist {spec.name!r} ({listed}); ignored")
                return
            for advice in advisories(spec):
                warn(f"plugin {plugin!r}, specialist {spec.name!r}: {advice}")
            add(spec.name, replace(spec, plugin=plugin))
        return register

    # ---- clashes ---------------------------------------------------------------------------

    def _resolve(self, kind: str, noun: str, claims: dict[str, list[tuple[str, Any]]]) -> dict[str, Any]:
        host, out = self.app.host, {}
        for name, candidates in claims.items():
            ranked = sorted(candidates, key=lambda c: host.precedence(c[0]))
            chosen = self._chosen(kind, name, ranked)
            if chosen is not None:
                ranked = [c for c in ranked if c[0] == chosen] + [c for c in ranked if c[0] != chosen]
            (winner, item), losers = ranked[0], ranked[1:]
            for loser, _ in losers:
                if chosen is not None:
                    continue  # the user chose; nothing to warn about
                if loser == winner:
                    warn(f"plugin {loser!r} registered {noun} {name!r} twice; the second was ignored")
                    continue
                warn(f"plugin {loser!r} also registers {noun} {name!r}, which plugin {winner!r} already serves "
                     f"({self._why(winner, loser)}); {loser!r}'s was ignored"
                     + (f". To use it instead, set {kind}.{name}.plugin: {self._config_name(loser)}"
                        if kind == "specialists" else ""))
            out[name] = item
            self.registered.setdefault(winner, {"specialists": [], "teachers": []})[kind].append(name)
        return out

    def _chosen(self, kind: str, name: str, ranked: list[tuple[str, Any]]) -> str | None:
        """The plugin that ``specialists.<name>.plugin`` in config chooses, if it registers ``name``."""
        if kind != "specialists":
            return None
        entry = self.app.config.subtrees("specialists").get(name) or {}
        wanted = entry.get("plugin") if isinstance(entry, dict) else None
        if not wanted:
            return None
        infos = self.app.host.infos
        for plugin, _ in ranked:
            info = infos.get(plugin)
            if wanted in (plugin, info.dist if info else None, info.entry_point if info else None):
                return plugin
        warn(f"config specialists.{name}.plugin names {wanted!r}, which does not register specialist {name!r} "
             f"(registered by {', '.join(repr(p) for p, _ in ranked)}); using {ranked[0][0]!r}")
        return None

    def _why(self, winner: str, loser: str) -> str:
        infos = self.app.host.infos
        w, lo = infos.get(winner), infos.get(loser)
        if w is not None and w.default:
            return "aeth's own"
        if w is not None and lo is not None and w.installed is not None and lo.installed is not None:
            return "installed first"
        return "registered first"

    def _config_name(self, plugin: str) -> str:
        info = self.app.host.infos.get(plugin)
        return info.dist if info is not None and info.dist else plugin


def advisories(spec: Specialist) -> list[str]:
    """What is valid but will work badly: too few routing examples, no system prompt."""
    out = []
    if spec.routing_examples and len(spec.routing_examples) < MIN_ROUTING_EXAMPLES:
        n = len(spec.routing_examples)
        out.append(f"{n} routing example{'s' if n != 1 else ''}; the router needs at least {MIN_ROUTING_EXAMPLES} "
                   "to pick it reliably (add more to routing_examples)")
    if not (spec.system_prompt or "").strip():
        out.append("empty system_prompt; the base model will answer as a generic assistant (set system_prompt)")
    return out
