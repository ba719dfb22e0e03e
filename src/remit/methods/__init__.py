"""Mid-training methods as objects: one file per method, one table (``registry``), a public way to add one.

    from remit.methods import Method, register_method, get_method
    get_method("remit").reference            # "logps": an online model or a score-reference cache

Modules: ``base`` (:class:`Method`, :class:`Arm`), ``registry`` (the table, plugins, arms), and one file
per built-in method: ``ntp``, ``remit``, ``rho1``, ``kd``, ``miniplm``. How to add a method: README,
"Add a method". Import-light: names are re-exported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remit.utils.lazy import lazy_exports

_EXPORTS = {
    "Method": "base", "Arm": "base", "PrepareContext": "base",
    "register_method": "registry", "get_method": "registry", "find_method": "registry",
    "method_names": "registry", "get_arm": "registry", "arm_names": "registry", "load_plugins": "registry",
    "role_of": "registry", "vanilla_arm": "registry", "remit_arm": "registry",
}
__all__ = ["Arm", "Method", "PrepareContext", "arm_names", "find_method", "get_arm", "get_method", "load_plugins",
           "method_names", "register_method", "remit_arm", "role_of", "vanilla_arm"]
assert sorted(__all__) == sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from remit.methods.base import Arm, Method, PrepareContext
    from remit.methods.registry import (
        arm_names,
        find_method,
        get_arm,
        get_method,
        load_plugins,
        method_names,
        register_method,
        remit_arm,
        role_of,
        vanilla_arm,
    )
