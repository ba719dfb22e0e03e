"""Data at scale: peak RAM of `remit midtrain` vs corpus size, and tokenisation engines side by side.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data.py            # both modes below
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data.py rss        # 5 steps on ~5M and ~25M tokens
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data.py engines    # tokens/s: datasets.map vs the others
    .venv/bin/python benchmarks/bench_data.py rss --src /tmp/old/src --tag before   # another checkout's code

Both write to benchmarks/results/data.json (one key per mode). The corpus is generated (seeded English and
arithmetic sentences, 5-60 per document) under --work; the model is a random-init Llama (hidden 64,
2 layers) with a 4096-token BPE tokenizer trained on the first 2000 documents. ``rss`` runs
``remit midtrain`` (ntp, seq 256, batch 8, 5 steps, a fresh data cache) in a subprocess per corpus and
reads the child's peak RSS (``ru_maxrss``). ``engines`` tokenises the same corpus with each engine in a
fresh subprocess, interleaved over ``--repeats`` rounds, and reports the median tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "data.json"
WORDS = ("Ann Bob Cara Dan Eve Finn Gus Hana has finds buys keeps counts apples books coins cards pens shells "
         "stones cups in the park at school home by river shop cat dog bird fox sleeps and sun is warm bright "
         "low red today so more gives away").split()


def make_corpus(path: Path, n_docs: int, seed: int = 0) -> Path:
    if path.is_file():
        return path
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_docs):
            sents = []
            for _ in range(rng.randint(5, 60)):
                a, b = rng.randint(1, 999), rng.randint(1, 99)
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
                sents.append(f"{words.capitalize()} {a} + {b} = {a + b}.")
            f.write(json.dumps({"text": " ".join(sents)}) + "\n")
    return path


def make_model(work: Path) -> Path:
    out = work / "model"
    if (out / "config.json").is_file():
        return out
    from remit.data import DataSource, read_texts
    from remit.models import ModelConfig, train_tokenizer

    texts = read_texts(DataSource(str(make_corpus(work / "small.jsonl", 12_000)), limit=2000))
    tok = train_tokenizer(texts, 4096)
    model = ModelConfig(arch="llama", hidden_size=64, num_layers=2, num_heads=4).build(tok, seed=0)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def peak_rss(work: Path, corpus: Path, src: Path, tag: str) -> dict:
    run_dir = work / f"run-{tag}-{corpus.stem}-{time.time_ns()}"
    args = [f"model.path={work / 'model'}", f"out_dir={run_dir / 'out'}", f"data.cache_dir={run_dir / 'cache'}",
            f"data.sources=[{{path: '{corpus}'}}]", "data.seq_len=256", "optim.batch_size=8",
            "optim.micro_batch_size=8", "max_steps=5", "logging.progress=false", "logging.tensorboard=false",
            "checkpoint_every=0", "method.name=ntp"]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "remit.cli", "midtrain", *args],
                         env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    rss = int(res.stdout.strip().splitlines()[-1])
    return {"corpus": corpus.name, "corpus_bytes": corpus.stat().st_size, "peak_rss_mib": round(rss / 1024, 1),
            "seconds": round(time.perf_counter() - t, 1), "code": tag}


def tokens_of(work: Path, corpus: Path) -> int:
    """Tokens (eos included) of a corpus, counted once with the benchmark's tokenizer."""
    from remit.data import DataSource, tokenize_source
    from remit.models import load_tokenizer

    return tokenize_source(DataSource(str(corpus)), load_tokenizer(work / "model"), cache_dir=work / "count").tokens.shape[0]


def cmd_rss(args) -> dict:
    work = Path(args.work)
    make_model(work)
    small = make_corpus(work / "small.jsonl", 12_000)
    large = make_corpus(work / "large.jsonl", 60_000, seed=1)
    tag = args.tag or ("this" if Path(args.src).resolve() == (ROOT / "src").resolve() else str(args.src))
    rows = [peak_rss(work, c, Path(args.src), tag) for c in (small, large)]
    for r, c in zip(rows, (small, large)):
        r["tokens"] = tokens_of(work, c)
        print(json.dumps(r))
    return {"runs": rows, "ratio_large_over_small": round(rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"], 3)}


ENGINE_CODE = """
import json, sys, time, tempfile
from multiprocessing import Pool
from pathlib import Path
from remit.data import DataSource
from remit.data import tokens as T
from remit.data.store import ShardWriter, token_dtype
from remit.models import load_tokenizer
engine, num_proc, corpus, model = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
tok = load_tokenizer(model)
src = DataSource(corpus)

def work(texts):  # the home-made alternative: a process pool over chunks, same encoder, same writer
    return T.encode_chunk(tok, texts, token_dtype(len(tok)))

with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    if engine == "pool":
        w = ShardWriter(Path(d), token_dtype(len(tok)))
        with Pool(num_proc) as pool:
            for lengths, flat in pool.imap(work, T._chunks(src, T.CHUNK_DOCS, 0)):
                w.add(lengths, flat)
        n = w.finish({})["num_tokens"]
    else:
        n = T.tokenize_source(src, tok, cache_dir=d, num_proc=num_proc, engine=engine).num_tokens
    print(json.dumps({"tokens": n, "seconds": time.perf_counter() - t}))
"""


def cmd_engines(args) -> dict:
    work = Path(args.work)
    make_model(work)
    corpus = make_corpus(work / "small.jsonl", 12_000)
    variants = [("inline", 1), ("inline_threads", 1), ("pool", args.num_proc), ("datasets", args.num_proc)]
    times: dict[str, list[float]] = {f"{e}:{n}": [] for e, n in variants}
    n_tokens = 0
    for _ in range(args.repeats):
        for engine, n in variants:
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
                   "TOKENIZERS_PARALLELISM": "true" if engine == "inline_threads" else "false"}
            res = subprocess.run([sys.executable, "-c", ENGINE_CODE, engine.replace("_threads", ""), str(n),
                                  str(corpus), str(work / "model")], env=env, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(res.stderr[-3000:])
            out = json.loads(res.stdout.strip().splitlines()[-1])
            n_tokens = out["tokens"]
            times[f"{engine}:{n}"].append(out["seconds"])
    rows = {k: {"median_s": round(statistics.median(v), 3), "tokens_per_s": round(n_tokens / statistics.median(v))}
            for k, v in times.items()}
    for k, v in rows.items():
        print(k, v)
    return {"corpus_tokens": n_tokens, "cpus": os.cpu_count(), "repeats": args.repeats, "engines": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", nargs="?", default="all", choices=["rss", "engines", "all"])
    p.add_argument("--work", default="/tmp/remit-bench-data")
    p.add_argument("--src", default=str(ROOT / "src"), help="the remit source tree to measure (rss)")
    p.add_argument("--tag", default=None, help="the name of the measured code in the results (rss)")
    p.add_argument("--num-proc", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    for mode in (["rss", "engines"] if args.mode == "all" else [args.mode]):
        result = cmd_rss(args) if mode == "rss" else cmd_engines(args)
        if not args.no_write:
            old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
            old[mode if mode == "engines" else f"rss:{result['runs'][0]['code']}"] = result
            RESULTS.write_text(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
