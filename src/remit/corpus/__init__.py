"""Data recipes: raw public datasets (the shared data folder) -> the jsonl files the stages read.

    remit prepare --config configs/data/quality.yaml

``stage.py`` (config, recipe table, manifest with input sha256s, reuse), ``quality.py`` (the quality
experiment's recipe).
"""
