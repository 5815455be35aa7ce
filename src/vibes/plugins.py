"""The plugin manager: built-in plugins plus those installed under the ``vibes`` entry point."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Generic, TypeVar

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "vibes"

# Built-in plugins go through the same hooks as third-party ones.
DEFAULT_PLUGINS = ("vibes.models.default_plugin", "vibes.chunking.default_plugin")

T = TypeVar("T")

_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created and loaded on first use."""
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager("vibes")
        manager.add_hookspecs(hookspecs)
        for name in DEFAULT_PLUGINS:
            manager.register(importlib.import_module(name), name=name)
        # VIBES_DISABLE_PLUGINS=1 gives a clean run when an installed plugin is broken.
        if not os.environ.get("VIBES_DISABLE_PLUGINS"):
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        _manager = manager
    return _manager


def list_plugins() -> list[dict[str, object]]:
    """Installed plugins (not the built-in ones), with the hooks each implements."""
    manager = get_plugin_manager()
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    result = []
    for plugin in manager.get_plugins():
        name = manager.get_name(plugin)
        if name in DEFAULT_PLUGINS:
            continue
        info: dict[str, object] = {
            "name": name,
            "hooks": sorted(h.name for h in manager.get_hookcallers(plugin) or []),
        }
        dist = distributions.get(id(plugin))
        if dist is not None:
            info["version"] = dist.version
        result.append(info)
    return result


class PluginRegistry(Generic[T]):
    """What the plugins register through one hook, collected on first use and then cached.

    ``collector`` makes a fresh ``(result, register)`` pair: the hook is called with
    ``register``, which validates each registration and adds it to ``result``.
    """

    def __init__(self, hook: str, collector: Callable[[], tuple[T, Callable[..., None]]]) -> None:
        self._hook = hook
        self._collector = collector
        self._value: T | None = None

    def get(self) -> T:
        """The collected registrations, asking the plugins on the first call only."""
        if self._value is None:
            found, register = self._collector()
            getattr(get_plugin_manager().hook, self._hook)(register=register)
            # Cached only once every plugin has registered without error.
            self._value = found
        return self._value

    def reset(self) -> None:
        """Forget the registrations, so the next :meth:`get` asks the plugins again."""
        self._value = None
