"""The plugin host: loads default and installed plugins and calls their hooks in isolation.

Plugins are found through the ``aeth`` entry-point group. Built-in behaviour lives in
``aeth.default_plugins`` and is registered first, through the very same hooks, so an installed
plugin can add to it or replace it. A plugin that fails to import, breaks a hook, or registers a
name that is already taken costs one warning naming it; every other plugin keeps working.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import pluggy

from aeth import hookspecs
from aeth.specialist import Specialist

ENTRY_POINT_GROUP = "aeth"
LOAD_PLUGINS_ENV = "AETH_LOAD_PLUGINS"
DEFAULT_PLUGINS = {
    "aeth.general": "aeth.default_plugins.general",
    "aeth.router": "aeth.default_plugins.router",
    "aeth.generator": "aeth.default_plugins.generator",
    "aeth.evaluator": "aeth.default_plugins.evaluator",
    "aeth.trainer": "aeth.default_plugins.trainer",
    "aeth.teachers": "aeth.default_plugins.teachers",
}

# How often each hook was called in this process: the hook meta-test reads it.
HOOK_CALLS: Counter[str] = Counter()


class AethWarning(UserWarning):
    """A problem that costs one plugin or one feature, never the whole command."""


def warn(message: str) -> None:
    """Emit one :class:`AethWarning` (the CLI prints it as a single ``warning:`` line)."""
    warnings.warn(message, AethWarning, stacklevel=2)


@dataclass
class PluginInfo:
    """What core knows of one plugin: where it comes from and what it registered."""

    name: str
    version: str = ""
    module: str = ""
    default: bool = False
    registered: dict[str, list[str]] = field(default_factory=lambda: {"specialists": [], "teachers": []})


class PluginHost:
    """A pluggy manager plus the registries built from its hooks.

    Use :func:`get_host` for the process-wide one. Registries (specialists, teachers) are built on
    first use and rebuilt after a plugin is registered or unregistered.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.pm.add_hookcall_monitoring(lambda name, impls, kwargs: HOOK_CALLS.update([name]), lambda *a: None)
        self.infos: dict[str, PluginInfo] = {}
        self._specialists: dict[str, Specialist] | None = None
        self._teachers: dict[str, Any] | None = None

    # ---- loading -------------------------------------------------------------------------

    def load_defaults(self) -> None:
        """Register aeth's built-in plugins."""
        for name, module in DEFAULT_PLUGINS.items():
            self.register(import_module(module), name, module=module, default=True)

    def load_entry_points(self, allowed: set[str] | None = None) -> None:
        """Import and register every installed plugin (only those in ``allowed`` if given)."""
        seen = set()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist else ""
            if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                continue
            seen.update({ep.name, dist_name})
            version = dist.version if dist else ""
            label = f"{ep.name!r}" + (f" ({dist_name} {version})" if dist_name else "")
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin must not take the others down
                fix = f"reinstall it, or `pip uninstall {dist_name}`" if dist_name else "fix or remove it"
                warn(f"plugin {label} failed to load and was skipped: {type(e).__name__}: {e} ({fix})")
                continue
            self.register(obj, ep.name, version=version, module=ep.value)
        for missing in sorted((allowed or set()) - seen):
            warn(f"{LOAD_PLUGINS_ENV} names {missing!r}, but no installed plugin has that name")

    def register(self, obj: Any, name: str, *, version: str = "", module: str = "", default: bool = False) -> bool:
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
        self.infos[name] = PluginInfo(name, version, module or getattr(obj, "__name__", ""), default)
        self.invalidate()
        return True

    def unregister(self, name: str) -> None:
        """Remove a plugin (tests use this to clean up throwaway plugins)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget the registries; they are rebuilt from the hooks on next use."""
        self._specialists = self._teachers = None
        for info in self.infos.values():  # commands are added once, by the CLI, and stay
            info.registered = {"specialists": [], "teachers": [], **({"commands": info.registered["commands"]}
                                                                       if "commands" in info.registered else {})}

    # ---- calling -------------------------------------------------------------------------

    def call_each(self, hook: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call every implementation of an all-called hook, one plugin at a time.

        Yields ``(plugin_name, result)``. A plugin that raises costs a warning naming it and the
        hook; the others still run. Implementations may take fewer arguments than the spec.
        """
        HOOK_CALLS.update([hook])
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):  # pluggy's call order: last registered first
            args = [kwargs[a] for a in impl.argnames]
            try:
                result = impl.function(*args)
            except Exception as e:
                warn(f"plugin {impl.plugin_name!r} failed in hook {hook}: {type(e).__name__}: {e}")
                continue
            yield impl.plugin_name, result

    def plugin_order(self) -> list[str]:
        """Plugin names in registration order (defaults first)."""
        return list(self.infos)

    # ---- registries ----------------------------------------------------------------------

    def specialists(self) -> dict[str, Specialist]:
        """All valid specialists by name, each stamped with the plugin that registered it."""
        if self._specialists is None:
            found: dict[str, Specialist] = {}
            for plugin in self._callers_in_order("register_specialists"):
                self._collect(plugin, "register_specialists", self._specialist_callback(plugin, found))
            self._specialists = found
        return self._specialists

    def teachers(self) -> dict[str, Any]:
        """All teacher backends by name."""
        if self._teachers is None:
            found: dict[str, Any] = {}

            def callback_for(plugin: str) -> Callable:
                def register(name: str, teacher: Any) -> None:
                    if name in found:
                        warn(f"plugin {plugin!r} registered teacher {name!r}, already registered by {found[name][0]!r}; ignored")
                        return
                    found[name] = (plugin, teacher)
                    self.infos[plugin].registered["teachers"].append(name)
                return register

            for plugin in self._callers_in_order("register_teachers"):
                self._collect(plugin, "register_teachers", callback_for(plugin))
            self._teachers = {n: t for n, (_, t) in found.items()}
        return self._teachers

    def _callers_in_order(self, hook: str) -> list[str]:
        having = {impl.plugin_name for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        return [p for p in self.plugin_order() if p in having]

    def _collect(self, plugin: str, hook: str, register: Callable) -> None:
        HOOK_CALLS.update([hook])
        impl = next(i for i in getattr(self.pm.hook, hook).get_hookimpls() if i.plugin_name == plugin)
        try:
            impl.function(*[register for _ in impl.argnames])
        except Exception as e:
            warn(f"plugin {plugin!r} failed in hook {hook}: {type(e).__name__}: {e}")

    def _specialist_callback(self, plugin: str, found: dict[str, Specialist]) -> Callable:
        def register(spec: Specialist) -> None:
            if not isinstance(spec, Specialist):
                warn(f"plugin {plugin!r} registered {type(spec).__name__}, not a Specialist; ignored")
                return
            problems = spec.problems()
            if problems:
                listed = "; ".join(f"field {f}: {m}" for f, m in problems)
                warn(f"plugin {plugin!r} registered invalid specialist {spec.name!r} ({listed}); ignored")
                return
            if spec.name in found:
                warn(f"plugin {plugin!r} registered specialist {spec.name!r}, already registered by plugin {found[spec.name].plugin!r}; the second was ignored")
                return
            found[spec.name] = replace(spec, plugin=plugin)
            self.infos[plugin].registered["specialists"].append(spec.name)
        return register

    def describe(self, include_defaults: bool = False) -> list[dict]:
        """What ``aeth plugins`` prints: name, version, hooks and registrations of each plugin."""
        self.specialists()
        self.teachers()
        out = []
        for name, info in self.infos.items():
            if info.default and not include_defaults:
                continue
            plugin = self.pm.get_plugin(name)
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            out.append({"name": name, "version": info.version, "module": info.module, "default": info.default,
                        "hooks": hooks, "registered": info.registered})
        return out


_HOST: PluginHost | None = None


def allowed_plugins() -> set[str] | None:
    """The names in ``AETH_LOAD_PLUGINS`` (``None`` when unset; empty set when set to "")."""
    raw = os.environ.get(LOAD_PLUGINS_ENV)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        host = PluginHost()
        host.load_defaults()
        host.load_entry_points(allowed_plugins())
        _HOST = host
    return _HOST


def invalidate_registries() -> None:
    """Make the process-wide host rebuild its registries on next use (after a config change)."""
    if _HOST is not None:
        _HOST.invalidate()


def reset_host() -> None:
    """Forget the process-wide host, so the next :func:`get_host` loads plugins afresh."""
    global _HOST
    _HOST = None
