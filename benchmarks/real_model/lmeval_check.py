"""remit eval against lm-evaluation-harness's own command, on the same model and the same local documents.

    python benchmarks/real_model/lmeval_check.py [--limit 40] [--data-dir ../shared/data]
    # -> benchmarks/results/real_model/lmeval_check.{md,json}

For every multiple-choice task that remit mirrors from lm-eval (``remit.eval.tasks``), the first ``limit``
documents that remit evaluates (``remit.eval.data.load_docs``: local files under ``data_dir``) are written as
JSON lines in the schema of the hub dataset that lm-eval's task reads, and a task YAML that ``include``s
lm-eval's own task file (its prompt, choices and target unchanged) points it at them. Then
``lm_eval --model hf --model_args pretrained=<converted SmolLM2 folder> --include_path ... --log_samples`` runs
as a subprocess, and ``remit eval``'s evaluation (``remit.eval.run.evaluate``, in process, the GGUF path) runs
on the same documents; per document and choice the two log-likelihoods, and the acc / acc_norm per document,
are compared. MMLU: one lm-eval task per subject (its 5 dev shots), matched to remit's round-robin documents.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TOL = 1e-4  # nats, per choice (same HFLM class; batches differ, so float summation order differs)
# task -> (lm-eval task file, under lm_eval/tasks), None for MMLU (per subject)
LMEVAL = {"arc_easy": "arc/arc_easy.yaml", "arc_challenge": "arc/arc_challenge.yaml", "piqa": "piqa/piqa.yaml",
          "boolq": "super_glue/boolq/default.yaml", "winogrande": "winogrande/default.yaml",
          "openbookqa": "openbookqa/openbookqa.yaml", "siqa": "siqa/siqa.yaml", "copa": "super_glue/copa/default.yaml",
          "mmlu": None}
ON_PURPOSE = {
    "copa": "lm-eval's COPA choices start with a space and its target delimiter adds another (two spaces before "
            "the continuation); remit scores one space",
    "siqa": "the local file (commonsense_llm_adapters) joins context and question into one string, so lm-eval's "
            "'Q: {{context}} {{question}}' gets an empty question and a trailing space before the newline; "
            "remit's prompt has no trailing space (on the hub copy the two render the same)",
}


def hub_schema(task: str, d: dict) -> dict:
    """remit's normalised document -> the fields of the hub dataset lm-eval's task reads."""
    if task == "openbookqa":
        return {"question_stem": d["question"], "choices": {"text": d["choices"], "label": list("ABCD")},
                "answerKey": "ABCD"[int(d["label"])]}
    if task == "siqa":
        ch = d["choices"]
        return {"context": d["question"], "question": "", "answerA": ch[0], "answerB": ch[1], "answerC": ch[2],
                "label": str(int(d["label"]) + 1)}
    if task == "mmlu":
        return {k: d[k] for k in ("question", "subject", "choices", "answer")}
    return d


def write_tasks(docs: dict[str, list[dict]], dev: dict[str, list[dict]], root: Path) -> dict[str, list[str]]:
    """YAMLs including lm-eval's task files; returns remit task -> lm-eval task names (in remit's doc order)."""
    import lm_eval

    tasks_dir = Path(lm_eval.__file__).parent / "tasks"
    names: dict[str, list[str]] = {}
    (root / "data").mkdir(parents=True)

    def one(name: str, include: Path, files: dict[str, list[dict]], extra: str = "") -> None:
        paths = {}
        for split, rows in files.items():
            p = root / "data" / f"{name}.{split}.jsonl"
            p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            paths[split] = str(p)
        (root / "tasks").mkdir(exist_ok=True)
        (root / "tasks" / f"{name}.yaml").write_text(
            f"include: {include}\ntask: {name}\ntag: []\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files: {json.dumps(paths)}\ntraining_split: null\nvalidation_split: null\n"
            f"test_split: test\n{extra}", encoding="utf-8")

    for task, rows in docs.items():
        if task != "mmlu":
            one(f"rc_{task}", tasks_dir / LMEVAL[task], {"test": [hub_schema(task, d) for d in rows]})
            names[task] = [f"rc_{task}"]
            continue
        names[task] = []
        for i, d in enumerate(rows):  # one task per document: its subject's dev shots
            s = d["subject"]
            one(f"rc_mmlu_{i}", tasks_dir / f"mmlu/default/mmlu_{s}.yaml",
                {"test": [hub_schema("mmlu", d)], "dev": [hub_schema("mmlu", r) for r in dev[s]]},
                "fewshot_split: dev\nnum_fewshot: 5\n")
            names[task].append(f"rc_mmlu_{i}")
    return names


def lm_eval_samples(model_dir: str, names: list[str], root: Path, out: Path, batch_size: int) -> dict[str, list]:
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
           "--tasks", ",".join(names), "--include_path", str(root / "tasks"), "--device", "cpu", "--batch_size",
           str(batch_size), "--log_samples", "--output_path", str(out)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    samples = {}
    for name in names:
        files = glob.glob(str(out / "**" / f"samples_{name}_*.jsonl"), recursive=True)
        rows = [json.loads(line) for line in Path(sorted(files)[-1]).read_text().splitlines()]
        samples[name] = sorted(rows, key=lambda r: r["doc_id"])
    return samples


def remit_samples(model: str, tasks: list[str], data_dir: str, limit: int, batch_size: int) -> dict[str, list]:
    import remit.eval.run as er

    captured: dict[str, list] = {}
    orig = er.collect

    def keep(samples):  # the samples lm-eval returned inside remit's evaluate (per choice log-likelihoods)
        captured.update(samples)
        return orig(samples)

    er.collect = keep
    try:
        er.evaluate(er.EvalConfig(model=model, tasks=tasks, data_dir=data_dir, limit=limit, batch_size=batch_size))
    finally:
        er.collect = orig
    return {t: sorted(captured[t], key=lambda r: r["doc_id"]) for t in tasks}


def lls(sample: dict) -> list[float]:
    return [float(r[0]) for r in sample["filtered_resps"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--tasks", default=",".join(LMEVAL))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "real_model" / "lmeval_check"))
    a = ap.parse_args()

    from fetch import fetch

    from remit.eval.data import load_docs, read_json_records
    from remit.models.gguf import resolve_model_path

    gguf = fetch()
    model_dir = resolve_model_path(gguf)
    tasks = a.tasks.split(",")
    docs = {t: load_docs(t, a.data_dir)["test"][:a.limit] for t in tasks}
    dev: dict[str, list[dict]] = {}
    if "mmlu" in tasks:
        for r in read_json_records(Path(a.data_dir) / "mmlu/dev.jsonl.gz", "mmlu"):
            dev.setdefault(r["subject"], []).append(r)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = write_tasks(docs, dev, root)
        theirs = lm_eval_samples(model_dir, [n for ns in names.values() for n in ns], root, root / "out",
                                 a.batch_size)
    t_lm = time.time() - t0
    ours = remit_samples(str(gguf), tasks, a.data_dir, a.limit, a.batch_size)
    t_remit = time.time() - t0 - t_lm
    rows, report = [], {}
    for t in tasks:
        mine = ours[t]
        other = [s for n in names[t] for s in theirs[n]]  # MMLU: one document per task, in remit's order
        assert len(mine) == len(other) == len(docs[t]), (t, len(mine), len(other))
        diffs = [abs(x - y) for m, o in zip(mine, other) for x, y in zip(lls(m), lls(o))]
        nchoice = [len(lls(m)) == len(lls(o)) for m, o in zip(mine, other)]
        metrics = [k for k in ("acc", "acc_norm") if k in mine[0] and k in other[0]]
        same = {k: sum(float(m[k]) == float(o[k]) for m, o in zip(mine, other)) for k in metrics}
        means = {k: (sum(float(m[k]) for m in mine) / len(mine), sum(float(o[k]) for o in other) / len(other))
                 for k in metrics}
        agree = all(nchoice) and max(diffs) <= TOL and all(v == len(mine) for v in same.values())
        report[t] = {"docs": len(mine), "choices": len(diffs), "max_abs_diff": max(diffs),
                     "mean_abs_diff": sum(diffs) / len(diffs), "same_per_doc": same, "means": means,
                     "agree": agree, "note": ON_PURPOSE.get(t, "")}
        verdict = "agree" if agree else ("differs on purpose" if t in ON_PURPOSE else "**DIFFERS**")
        rows.append(f"| {t} | {len(mine)} | {len(diffs)} | {max(diffs):.2e} | "
                    + ", ".join(f"{k} {same[k]}/{len(mine)} ({means[k][0]:.3f} vs {means[k][1]:.3f})" for k in metrics)
                    + f" | {verdict} |")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"tolerance": TOL, "limit": a.limit, "model": str(gguf),
                                                    "lm_eval_s": round(t_lm, 1), "remit_s": round(t_remit, 1),
                                                    "tasks": report}, indent=1) + "\n")
    notes = "".join(f"- {t}: {ON_PURPOSE[t]}.\n" for t in tasks if t in ON_PURPOSE)
    import lm_eval

    text = (f"# remit eval vs `lm_eval --model hf` (SmolLM2-135M-Instruct Q4_1, dequantized fp32)\n\n"
            f"Command: `python benchmarks/real_model/lmeval_check.py --limit {a.limit}` "
            f"(lm-eval {lm_eval.__version__}; {t_lm:.0f} s for lm_eval, {t_remit:.0f} s for remit, 2 CPU cores).\n"
            f"Same model, same local documents (the first {a.limit} of each task from ../shared/data); lm-eval runs "
            f"its own task YAMLs (included unchanged, only the data files replaced). Tolerance: |delta log-likelihood| "
            f"<= {TOL:g} nats per choice, and identical acc / acc_norm per document.\n\n"
            "| task | docs | choices | max abs delta loglik | same per doc (remit vs lm-eval mean) | verdict |\n"
            "|---|---:|---:|---:|---|---|\n" + "\n".join(rows) + "\n\n" + (f"Differ on purpose:\n{notes}" if notes else ""))
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
