"""The plugin manager: built-in plugins plus those installed under the ``vibes`` entry point."""

from __future__ import annotations

import importlib
import os

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "vibes"

# Built-in plugins go through the same hooks as third-party ones.
DEFAULT_PLUGINS = ("vibes.models.default_plugin", "vibes.chunking.default_plugin")

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
