"""The plugin host: loads default and installed plugins, and lets pluggy call their hooks in isolation.

Plugins are found through the ``aeth`` entry-point group; a plugin is its *distribution* (its
name in ``aeth plugins`` is the distribution's, so two distributions whose entry points share a
name both load). Built-in behaviour lives in ``aeth.default_plugins`` and is registered first,
through the very same hooks, so an installed plugin can add to it or replace it.

Every hook is called through pluggy (``host.pm.hook.NAME``), so ``tryfirst``, ``trylast`` and
wrappers behave as pluggy documents. Isolation wraps each plugin's own implementations when the
plugin is registered: one that raises costs one warning naming the plugin and counts as having
returned ``None`` (for a first-result hook, the next implementation answers). A domain error
(:class:`~aeth.errors.AethError`) from ``generate``, ``train`` or ``evaluate`` is meant for the
user and passes through. Wrappers are not wrapped: a wrapper that raises fails the call, as in pluggy.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import Distribution, entry_points
from pathlib import Path
from typing import Any

import pluggy

from aeth import hookspecs
from aeth.errors import AethError

ENTRY_POINT_GROUP = "aeth"
LOAD_PLUGINS_ENV = "AETH_LOAD_PLUGINS"
DEFAULT_PLUGINS = {
    "aeth.general": "aeth.default_plugins.general",
    "aeth.router": "aeth.default_plugins.router",
    "aeth.generator": "aeth.default_plugins.generator",
    "aeth.evaluator": "aeth.default_plugins.evaluator",
    "aeth.trainer": "aeth.default_plugins.trainer",
    "aeth.teachers": "aeth.default_plugins.teachers",
    "aeth.safety": "aeth.default_plugins.safety",
}
#: hooks whose AethError is a message for the user (a missing model, images sent to a text model),
#: not a broken plugin: it propagates instead of costing a warning
USER_ERROR_HOOKS = frozenset({"generate", "train", "evaluate"})

#: the plugin whose implementation is running in this thread (registration callbacks read it)
_CALLING: ContextVar[str | None] = ContextVar("aeth_calling_plugin", default=None)
#: (plugin, result) of each implementation of the hook call in progress, for attribution
_RESULTS: ContextVar[list | None] = ContextVar("aeth_hook_results", default=None)


class AethWarning(UserWarning):
    """A problem that costs one plugin or one feature, never the whole command."""


def warn(message: str) -> None:
    """Emit one :class:`AethWarning` (the CLI prints it as a single ``warning:`` line)."""
    warnings.warn(message, AethWarning, stacklevel=2)


def calling_plugin() -> str | None:
    """The name of the plugin whose hook implementation is running now (None outside any)."""
    return _CALLING.get()


@dataclass
class PluginInfo:
    """What core knows of one plugin: where it comes from and what it added to the command line."""

    name: str
    version: str = ""
    module: str = ""
    default: bool = False
    dist: str = ""  #: the distribution that ships it ("" for aeth's defaults and plugins registered in code)
    entry_point: str = ""
    installed: float | None = None  #: when its distribution was installed (seconds since the epoch)
    order: int = 0  #: registration order in this host
    commands: list[str] = field(default_factory=list)


class PluginHost:
    """A pluggy manager holding aeth's default plugins and the installed ones.

    It holds no configuration: what plugins *register* (specialists, teachers) depends on an
    application's config and lives on :class:`aeth.app.Aeth`. ``generation`` counts registrations
    and removals, so an application knows when to rebuild what it collected.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.generation = 0
        self._order = 0

    # ---- loading -------------------------------------------------------------------------

    def load_defaults(self) -> None:
        """Register aeth's built-in plugins."""
        for name, module in DEFAULT_PLUGINS.items():
            self.register(import_module(module), name, module=module, default=True)

    def load_entry_points(self, allowed: set[str] | None = None) -> None:
        """Import and register every installed plugin (only those in ``allowed`` if given).

        A plugin is named after its distribution (``dist:entry-point`` when one distribution
        declares several); ``allowed`` may name either the distribution or the entry point.
        """
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP)]
        per_dist: dict[str, int] = {}
        for ep in found:
            per_dist[_dist_name(ep)] = per_dist.get(_dist_name(ep), 0) + 1
        seen: set[str] = set()
        for ep in sorted(found, key=lambda e: (_dist_name(e), e.name)):
            dist_name = _dist_name(ep)
            if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                continue
            seen.update({ep.name, dist_name})
            name = dist_name or ep.name
            if per_dist.get(dist_name, 0) > 1 or not dist_name:
                name = f"{dist_name}:{ep.name}" if dist_name else ep.name
            dist = getattr(ep, "dist", None)
            version = dist.version if dist else ""
            label = f"{name!r}" + (f" ({version})" if version else "")
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin must not take the others down
                fix = f"reinstall it, or `pip uninstall {dist_name}`" if dist_name else "fix or remove it"
                warn(f"plugin {label} failed to load and was skipped: {type(e).__name__}: {e} ({fix})")
                continue
            self.register(obj, name, version=version, module=ep.value, dist=dist_name, entry_point=ep.name,
                          installed=_installed_at(dist))
        for missing in sorted((allowed or set()) - seen):
            warn(f"{LOAD_PLUGINS_ENV} names {missing!r}, but no installed plugin has that name")

    def register(self, obj: Any, name: str, *, version: str = "", module: str = "", default: bool = False,
                 dist: str = "", entry_point: str = "", installed: float | None = None) -> bool:
        """Register one plugin object; on any validation problem warn, undo, and return False."""
        if self.pm.has_plugin(name):
            warn(f"plugin {name!r} is already registered; the second copy ({module or obj!r}) was skipped")
            return False
        try:
            self.pm.register(obj, name=name)
            self.pm.check_pending()
        except Exception as e:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            warn(f"plugin {name!r} was skipped: {type(e).__name__}: {e}")
            return False
        self._isolate(name)
        self._order += 1
        self.infos[name] = PluginInfo(name, version, module or getattr(obj, "__name__", ""), default, dist,
                                      entry_point, installed, self._order)
        self.generation += 1
        return True

    def unregister(self, name: str) -> None:
        """Remove a plugin (tests use this to clean up throwaway plugins)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self.generation += 1

    def _isolate(self, name: str) -> None:
        """Wrap each of plugin ``name``'s implementations (not its wrappers) so a raise costs a warning."""
        for caller in self.pm.get_hookcallers(self.pm.get_plugin(name)) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name and not (impl.wrapper or impl.hookwrapper):
                    impl.function = _isolated(impl.function, name, caller.name)

    # ---- calling -------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """``pm.hook``: call a hook as ``host.hook.NAME(**kwargs)``."""
        return self.pm.hook

    def call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call the all-called ``hook`` through pluggy; ``(plugin, result)`` for each non-None result,
        in pluggy's order (tryfirst implementations, then the most recently registered plugin first).

        A result a wrapper put in that no implementation returned is attributed to "a hook wrapper".
        """
        record: list[tuple[str, Any]] = []
        token = _RESULTS.set(record)
        try:
            results = getattr(self.pm.hook, hook)(**kwargs)
        finally:
            _RESULTS.reset(token)
        out, used = [], set()
        for result in results:
            match = next((i for i, (_, r) in enumerate(record) if r is result and i not in used), None)
            if match is not None:
                used.add(match)
            out.append((record[match][0] if match is not None else "a hook wrapper", result))
        return out

    def precedence(self, plugin: str) -> tuple:
        """Sort key for name clashes: aeth's defaults first, then the distribution installed first,
        then the plugin registered first (plugins registered in code, as tests do, come last)."""
        info = self.infos.get(plugin)
        if info is None:
            return (2, float("inf"), 0)
        return (0 if info.default else 1, info.installed if info.installed is not None else float("inf"), info.order)

    def describe(self, registered: dict[str, dict[str, list[str]]] | None = None,
                 include_defaults: bool = False) -> list[dict]:
        """What ``aeth plugins`` prints: name, distribution, version, hooks and what each registered."""
        out = []
        for name, info in self.infos.items():
            if info.default and not include_defaults:
                continue
            plugin = self.pm.get_plugin(name)
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            added = {**(registered or {}).get(name, {"specialists": [], "teachers": []})}
            if info.commands:
                added["commands"] = sorted(info.commands)
            out.append({"name": name, "distribution": info.dist, "version": info.version, "module": info.module,
                        "default": info.default, "hooks": hooks, "registered": added})
        return out


def _isolated(function: Callable, plugin: str, hook: str) -> Callable:
    """``function`` (one plugin's implementation of ``hook``) with errors isolated and its result recorded."""
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        token = _CALLING.set(plugin)
        try:
            result = function(*args)
        except AethError:
            if hook in USER_ERROR_HOOKS:
                raise
            result = None
            warn(f"plugin {plugin!r} failed in hook {hook}: {_last_error()}")
        except Exception:
            result = None
            warn(f"plugin {plugin!r} failed in hook {hook}: {_last_error()}")
        finally:
            _CALLING.reset(token)
        record = _RESULTS.get()
        if record is not None and result is not None:
            record.append((plugin, result))
        return result
    return call


def _last_error() -> str:
    import sys

    e = sys.exc_info()[1]
    return f"{type(e).__name__}: {e}"


def _dist_name(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None and dist.metadata["Name"] else ""


def _installed_at(dist: Distribution | None) -> float | None:
    """When ``dist`` was installed: the time its metadata directory was written (None if unknown)."""
    path = getattr(dist, "_path", None)  # importlib.metadata's PathDistribution keeps its dist-info here
    try:
        return Path(path).stat().st_mtime if path is not None else None
    except OSError:
        return None


def allowed_plugins() -> set[str] | None:
    """The names in ``AETH_LOAD_PLUGINS`` (``None`` when unset; empty set when set to "")."""
    raw = os.environ.get(LOAD_PLUGINS_ENV)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def load_host(allowed: set[str] | None = None) -> PluginHost:
    """A new host with aeth's defaults and the installed plugins (``allowed``: those only)."""
    host = PluginHost()
    host.load_defaults()
    host.load_entry_points(allowed)
    return host


_DEFAULT: PluginHost | None = None


def default_host() -> PluginHost:
    """The host of this process's installed plugins (loaded on first use, honouring ``AETH_LOAD_PLUGINS``).

    Python imports a plugin module once per process, so one host serves every :class:`aeth.app.Aeth`
    that is not given another; it holds plugins, never configuration.
    """
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_host(allowed_plugins())
    return _DEFAULT


def reset_default_host() -> None:
    """Forget the default host, so the next :func:`default_host` loads plugins afresh (tests)."""
    global _DEFAULT
    _DEFAULT = None
