"""Cost of ``remit eval --suite paper10 --limit N`` outside the model: the lean path vs the former one.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_eval.py --data-dir ../shared/data
    ... --model runs/x/midtrain --limit 5 --reps 3

Both paths run in THIS process, interleaved (lean, former, lean, ...) after one warm-up call that pays
the imports, and the median wall time of ``remit.eval.run.evaluate`` is reported. "former" is today's
code with the two changes undone by patching: every test doc is handed to lm-eval (``tasks._first``
-> identity) and lm-eval's environment report runs (``run._no_env_info`` -> no-op). Also counted: rows
turned into ``datasets`` rows and subprocesses started. The results must be identical. Default model:
a random-init 49k-parameter Llama (hidden 32, context 2048, a BPE tokenizer trained on the repo's docs),
so the time is the harness's, not the model's; generation is capped (``max_gen_toks=16``).
Writes ``benchmarks/results/eval.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_model(out: Path) -> Path:
    from remit.models import ModelConfig, train_tokenizer

    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "README.md", ROOT / "docs" / "method.md")]
    tok = train_tokenizer(texts, 512, out_dir=out)
    model = ModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=2048).build(tok)
    model.save_pretrained(out)
    return out


@contextlib.contextmanager
def counters():
    """Counts subprocesses started and rows turned into datasets.Dataset (lm-eval's task datasets)."""
    import datasets

    c = {"subprocesses": 0, "dataset_rows": 0}
    popen, from_list = subprocess.Popen.__init__, datasets.Dataset.from_list.__func__

    def counting_popen(self, *a, **kw):
        c["subprocesses"] += 1
        return popen(self, *a, **kw)

    def counting_from_list(cls, rows, *a, **kw):
        c["dataset_rows"] += len(rows)
        return from_list(cls, rows, *a, **kw)

    subprocess.Popen.__init__ = counting_popen
    datasets.Dataset.from_list = classmethod(counting_from_list)
    try:
        yield c
    finally:
        subprocess.Popen.__init__ = popen
        datasets.Dataset.from_list = classmethod(from_list)


@contextlib.contextmanager
def former_path():
    from remit.eval import run as run_mod
    from remit.eval import tasks as tasks_mod

    saved = tasks_mod._first, run_mod._no_env_info
    tasks_mod._first, run_mod._no_env_info = (lambda docs, limit: docs), contextlib.nullcontext
    try:
        yield
    finally:
        tasks_mod._first, run_mod._no_env_info = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval.json"))
    args = ap.parse_args()
    from remit.eval.run import EvalConfig, evaluate
    from remit.utils.integrations import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory() as d:
        model = args.model or str(tiny_model(Path(d)))
        cfg = EvalConfig(model=model, suite="paper10", data_dir=args.data_dir, limit=args.limit, device="cpu",
                         max_gen_toks=16)
        evaluate(cfg)  # warm-up: imports, tokenizer and file caches
        times: dict[str, list[float]] = {"lean": [], "former": []}
        counts, results = {}, {}
        for _ in range(args.reps):
            for path in ("lean", "former"):
                with counters() as c, (former_path() if path == "former" else contextlib.nullcontext()):
                    t0 = time.perf_counter()
                    res = evaluate(cfg)
                    times[path].append(time.perf_counter() - t0)
                counts[path], results[path] = dict(c), {k: res[k] for k in ("tasks", "per_example")}
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"setup": {"suite": "paper10", "limit": args.limit, "model": args.model or "random-init llama hidden 32",
                     "reps": args.reps, "max_gen_toks": 16},
           "median_s": med, "all_s": times, "speedup": med["former"] / med["lean"], "counts": counts,
           "identical_results": results["lean"] == results["former"],
           "command": "OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_eval.py --data-dir ../shared/data"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
