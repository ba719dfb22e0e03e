"""The method table: ``method.name`` -> :class:`~remit.methods.base.Method`, and the flywheel's arms.

    from remit.methods import get_method, register_method
    get_method("remit").build(cfg)                   # the objective of a MidtrainConfig
    register_method(Method(name="mine", build=...))  # a method of your own, no edit in remit

Built-in methods live one per file in this folder (``BUILTIN``: name -> module exposing ``METHOD``),
imported on first use. Methods from outside the package are registered by importing their module:
``remit --plugin my_pkg.my_methods midtrain method.name=mine ...``, the ``REMIT_PLUGINS`` environment
variable (comma-separated modules, for torchrun workers and scripts too), or an entry point of group
``remit.methods`` in the plugin's package metadata. Such a module calls :func:`register_method`.
"""

from __future__ import annotations

import importlib
import os
import traceback
from importlib import metadata

from remit.errors import ConfigError
from remit.methods.base import Arm, Method

__all__ = ["BUILTIN", "ARMS", "register_method", "get_method", "find_method", "method_names", "get_arm",
           "arm_names", "load_plugins", "replaced_methods", "role_of", "vanilla_arm", "remit_arm"]

# The table: one line per built-in method (its file exposes METHOD).
BUILTIN: dict[str, str] = {
    "ntp": "remit.methods.ntp",
    "remit": "remit.methods.remit",
    "rho1": "remit.methods.rho1",
    "kd": "remit.methods.kd",
    "miniplm": "remit.methods.miniplm",
    "remit_placebo": "remit.methods.placebo",
}

# Flywheel arms that are not just "a method guided by the round's RL model".
ARMS: dict[str, Arm] = {
    "vanilla": Arm("vanilla", "ntp", guide="none", label="vanilla", role="vanilla"),  # B0: the plain anneal
    "remit": Arm("remit", "remit", guide="rl", label="remit", role="remit"),  # B_k: guided by R_{k-1}
    "sft_guided": Arm("sft_guided", "remit", guide="sft", role="baseline"),
}


def vanilla_arm() -> Arm:
    """The arm of the vanilla anneal (B0) in the flywheel; its method is the one pre-training runs."""
    return ARMS["vanilla"]


def remit_arm() -> Arm:
    """The arm of every ReMiT round (B1, B2, ...) in the flywheel."""
    return ARMS["remit"]


_REGISTERED: dict[str, Method] = {}
_REPLACED: dict[str, str] = {}  # built-in name -> where the method that replaced it comes from
_PLUGINS_LOADED = False


def _origin(method: Method) -> str:
    build = method.build
    return f"{getattr(build, '__module__', '?')}.{getattr(build, '__qualname__', type(build).__name__)}"


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the table; returns it. A name that exists is refused unless ``replace=True``."""
    if not isinstance(method, Method):
        raise TypeError(f"register_method takes a remit.methods.Method, got {type(method).__name__}")
    if not method.name or not method.name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"method name {method.name!r} must be letters, digits, '_' or '-'")
    old = _REGISTERED.get(method.name)
    same_module = old is not None and getattr(old.build, "__module__", None) == getattr(method.build, "__module__", None)
    exists = method.name in BUILTIN or (old is not None and not same_module)  # a module imported again: fine
    if exists and not replace:
        where = f"built-in, {BUILTIN[method.name]}" if method.name in BUILTIN else f"from {_origin(old)}"
        raise ConfigError(f"method {method.name!r} already exists ({where}): choose another name, or pass "
                          f"register_method(..., replace=True) to replace it")
    if method.name in BUILTIN:
        _REPLACED[method.name] = _origin(method)
    _REGISTERED[method.name] = method
    return method


def replaced_methods() -> dict[str, str]:
    """Built-in methods a plugin replaced (name -> its origin): part of every config hash when not empty."""
    return dict(_REPLACED)


def load_plugins(modules: list[str] | tuple[str, ...] = ()) -> None:
    """Import plugin modules (they call :func:`register_method`; a later registration of a name wins):
    once per process the ``remit.methods`` entry points, then ``$REMIT_PLUGINS``; then ``modules``."""
    global _PLUGINS_LOADED
    names = []
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for ep in metadata.entry_points(group="remit.methods"):
            _import(ep.value.split(":")[0], f"entry point {ep.name}")
        names += [m.strip() for m in os.environ.get("REMIT_PLUGINS", "").split(",") if m.strip()]
    for name in names + list(modules):
        _import(name, "plugin")


def _import(module: str, what: str) -> None:
    try:
        importlib.import_module(module)
    except SyntaxError as e:
        raise ConfigError(f"{what} {module!r} has a syntax error at {e.filename}:{e.lineno}: {e.msg}") from None
    except ImportError as e:
        raise ConfigError(f"{what} {module!r} could not be imported: {e}") from None
    except Exception as e:  # the plugin's own code raised while it was imported (register_method included)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "importlib" not in f.filename
                  and not f.filename.endswith("registry.py")]
        at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        raise ConfigError(f"{what} {module!r} failed while it was imported{at}: {type(e).__name__}: {e}") from None


def find_method(name: str) -> Method | None:
    """The method called ``name``, or None. Plugins load first (once), so one may replace a built-in method."""
    load_plugins()
    if name not in _REGISTERED and name in BUILTIN:
        _REGISTERED[name] = importlib.import_module(BUILTIN[name]).METHOD
    return _REGISTERED.get(name)


def get_method(name: str, key: str = "method.name") -> Method:
    method = find_method(name)
    if method is None:
        raise ConfigError(f"{key}={name!r} is not a known method. Accepted values: {', '.join(method_names())} "
                          f"(add one with remit.methods.register_method, loaded with --plugin MODULE)")
    return method


def method_names() -> list[str]:
    """Every method name: the built-in ones in table order, then the registered ones."""
    load_plugins()
    return list(BUILTIN) + [n for n in _REGISTERED if n not in BUILTIN]


def get_arm(name: str, key: str = "baselines") -> Arm:
    """The arm ``name``: one of :data:`ARMS`, or a method guided by the RL model (by nothing if it needs none)."""
    if name in ARMS:
        return ARMS[name]
    method = find_method(name)
    if method is None:
        raise ConfigError(f"{key}: {name!r} is not known. Accepted values: {', '.join(arm_names())}.")
    return Arm(name, name, guide="rl" if method.needs_reference else "none", label=method.run_label)


def arm_names(role: str | None = "baseline") -> list[str]:
    """Arms (and methods) whose role is ``role`` (None: all)."""
    names = list(ARMS) + [n for n in method_names() if n not in ARMS]
    return [n for n in names if role is None or role_of(n) == role]


def role_of(name: str | None) -> str | None:
    """The report role of an arm or method name (vanilla / remit / baseline); None for an unknown name."""
    if not name:
        return None
    if name in ARMS:
        return ARMS[name].role or role_of(ARMS[name].method)
    method = find_method(name)
    return method.role if method is not None else None
