"""Evaluation: benchmark suites on lm-evaluation-harness (``run``), the world's suite, and run comparison
(``compare``). Import-light: submodules import lm-eval/torch only inside functions.

    remit eval --model DIR --suite paper10 --data-dir ../shared/data --limit 50
    remit compare RUN_A RUN_B
"""
