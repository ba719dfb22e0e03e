"""Sandbox for model-written code: ``run_python`` / ``run_tests`` (see ``runner.py`` and ``bwrap.py`` for what
is enforced); ``diagnose()`` measures which layers hold on this machine, ``require()`` refuses to run model code
when one is missing (unless the stage's config says ``sandbox_unenforced_ok=true``)."""

from remit.sandbox.diagnose import REQUIRED, SandboxUnavailableError, configure, diagnose, missing_layers, require
from remit.sandbox.runner import SandboxResult, run_python, run_tests

__all__ = ["REQUIRED", "SandboxResult", "SandboxUnavailableError", "configure", "diagnose", "missing_layers",
           "require", "run_python", "run_tests"]
