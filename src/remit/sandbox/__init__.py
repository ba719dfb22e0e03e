"""Sandbox for model-written code: ``run_python`` / ``run_tests`` (see ``runner.py`` for what is enforced);
``diagnose()`` measures which guarantees hold on this machine."""

from remit.sandbox.diagnose import diagnose
from remit.sandbox.runner import SandboxResult, run_python, run_tests

__all__ = ["SandboxResult", "diagnose", "run_python", "run_tests"]
