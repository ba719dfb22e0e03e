"""Sandbox for model-written code: ``run_python`` / ``run_tests`` (see ``runner.py`` for what is enforced)."""

from remit.sandbox.runner import SandboxResult, run_python, run_tests

__all__ = ["SandboxResult", "run_python", "run_tests"]
