"""Benchmark data: local files (``data_dir``) or the usual hub datasets, normalised to one schema per task.

Every loader returns ``{split: list[dict]}``. The local layout is the one of ``../shared/data``
(see each folder's SOURCES.md); without ``data_dir`` the hub datasets that lm-eval's own tasks
use are loaded instead (needs network). Instruction-form files (commonsense_llm_adapters) are
parsed back into the fields of the original datasets, so prompts are identical in both modes.

Mixed benchmarks (MMLU subjects, MATH types, BBH subtasks) are ordered round-robin over their
parts, so that ``--limit N`` samples every part instead of the first subject only.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from remit.errors import DataError

Docs = dict[str, list[dict[str, Any]]]


# The fields each local benchmark file must have, and their types (a wrong one fails here, naming the
# file and the line, not later inside lm-eval).
_STR, _NUM, _LABEL = (str,), (int, float), (bool, int, str)
FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "gsm8k": {"question": _STR, "answer": _STR},
    "math": {"problem": _STR, "solution": _STR, "type": _STR},
    "humaneval": {"prompt": _STR, "test": _STR, "entry_point": _STR},
    "mbpp": {"task_id": (int, str), "text": _STR, "test_list": (list,)},
    "arc_easy": {"id": _STR, "question": (dict,), "answerKey": _STR},
    "arc_challenge": {"id": _STR, "question": (dict,), "answerKey": _STR},
    "mmlu": {"question": _STR, "subject": _STR, "choices": (list,), "answer": (int, str)},
    "boolq": {"question": _STR, "passage": _STR, "label": _LABEL},
    "copa": {"premise": _STR, "choice1": _STR, "choice2": _STR, "question": _STR, "label": _LABEL},
    "piqa": {"instruction": _STR, "answer": _STR},
    "winogrande": {"instruction": _STR, "answer": _STR},
    "openbookqa": {"instruction": _STR, "answer": _STR},
    "siqa": {"instruction": _STR, "answer": _STR},
    "gold": {"context": _STR, "target": _STR},
}


def _check_row(row: Any, task: str, where: str) -> None:
    if not isinstance(row, dict):
        raise DataError(f"task '{task}': {where}: expected a JSON object, got {type(row).__name__}")
    for key, types in FIELDS.get(task, {}).items():
        if key not in row:
            raise DataError(f"task '{task}': {where}: missing field '{key}'")
        val = row[key]
        if not isinstance(val, types) or (isinstance(val, bool) and bool not in types):
            want = " or ".join(t.__name__ for t in types)
            raise DataError(f"task '{task}': {where}: field '{key}' must be {want}, got {type(val).__name__} "
                            f"({json.dumps(val)[:40]})")


def read_json_records(path: Path, task: str) -> list[dict[str, Any]]:
    """Rows of a .json (list or {"examples": [...]}) or .jsonl file, gzipped or not, checked against FIELDS."""
    if not path.is_file():
        raise DataError(f"task '{task}': data file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.name[:-3] if path.suffix == ".gz" else path.name
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            if stem.endswith(".jsonl"):
                rows = []
                for i, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as e:
                            raise DataError(f"task '{task}': {path} line {i}: invalid JSON ({e.msg})") from None
                        _check_row(rows[-1], task, f"{path} line {i}")
                return rows
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise DataError(f"task '{task}': {path} line {e.lineno}: invalid JSON ({e.msg})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"task '{task}': {path} is not a valid gzip file ({e}): re-download it, or drop the .gz "
                        f"suffix if it is plain text") from None
    except UnicodeDecodeError as e:
        raise DataError(f"task '{task}': {path}: not UTF-8 text (byte {e.object[e.start]:#04x}); re-encode it") from None
    rows = data["examples"] if isinstance(data, dict) and "examples" in data else data
    if not isinstance(rows, list):
        raise DataError(f"task '{task}': {path}: expected a JSON list of records (or {{\"examples\": [...]}}), "
                        f"got {type(rows).__name__}")
    for i, row in enumerate(rows):
        _check_row(row, task, f"{path} record {i}")
    return rows


def round_robin(rows: list[dict], key: str) -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    out, parts = [], [groups[k] for k in sorted(groups)]
    for i in range(max((len(p) for p in parts), default=0)):
        out += [p[i] for p in parts if i < len(p)]
    return out


def _hub(path: str, name: str | None = None, split: str = "test") -> list[dict]:
    import datasets

    return [dict(r) for r in datasets.load_dataset(path, name, split=split)]


# ---------------------------------------------------------------- instruction-form parsers
def _options(text: str, word: str) -> list[str]:
    """'Answer1: a Answer2: b\n\nAnswer format: ...' -> ['a', 'b']."""
    body = text.split("Answer format:")[0]
    parts = re.split(rf"{word}(\d+):", body)
    return [parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)]


def _stem(text: str, word: str) -> str:
    head = re.split(rf"{word}1:", text)[0]
    return re.sub(r"^Please choose the correct [a-z ]+?: ", "", head).strip()


def _label(answer: str) -> int:
    return int(re.sub(r"\D", "", answer)) - 1


def _parse_piqa(r: dict) -> dict:
    s = _options(r["instruction"], "Solution")
    return {"goal": _stem(r["instruction"], "Solution"), "sol1": s[0], "sol2": s[1], "label": _label(r["answer"])}


def _parse_wino(r: dict) -> dict:
    o = _options(r["instruction"], "Option")
    return {"sentence": _stem(r["instruction"], "Option"), "option1": o[0], "option2": o[1],
            "answer": str(_label(r["answer"]) + 1)}


def _parse_qa(r: dict) -> dict:
    return {"question": _stem(r["instruction"], "Answer"), "choices": _options(r["instruction"], "Answer"),
            "label": _label(r["answer"])}


# ---------------------------------------------------------------- loaders (local, hub)
def gsm8k(d: Path | None) -> Docs:
    if d is None:
        return {"test": _hub("openai/gsm8k", "main"), "train": _hub("openai/gsm8k", "main", "train")}
    return {"test": read_json_records(d / "gsm8k/test.jsonl", "gsm8k"),
            "train": read_json_records(d / "gsm8k/train.jsonl.gz", "gsm8k")}


def math(d: Path | None) -> Docs:
    if d is None:
        subjects = ["algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                    "prealgebra", "precalculus"]
        rows = [r | {"type": s} for s in subjects for r in _hub("EleutherAI/hendrycks_math", s)]
    else:
        rows = read_json_records(d / "math/test.jsonl.gz", "math")
    return {"test": round_robin(rows, "type")}


def humaneval(d: Path | None) -> Docs:
    if d is None:
        return {"test": _hub("openai/openai_humaneval")}
    return {"test": read_json_records(d / "humaneval/HumanEval.jsonl.gz", "humaneval")}


def mbpp(d: Path | None) -> Docs:
    if d is None:
        rows = _hub("google-research-datasets/mbpp", "full") + _hub("google-research-datasets/mbpp", "full", "prompt")
    else:
        rows = read_json_records(d / "mbpp/mbpp.jsonl", "mbpp")
    by_id = {int(r["task_id"]): r for r in rows}
    # Upstream split by task_id: 1-10 few-shot prompts, 11-510 test (lm-eval uses 2, 3, 4 as its 3 shots).
    return {"test": [by_id[i] for i in range(11, 511) if i in by_id], "prompt": [by_id[i] for i in (2, 3, 4)]}


def _arc(d: Path | None, name: str) -> Docs:
    if d is None:
        return {"test": _hub("allenai/ai2_arc", name)}
    rows = read_json_records(d / f"arc/{name}-Test.jsonl", name.lower().replace("-", "_"))
    return {"test": [{"id": r["id"], "question": r["question"]["stem"], "answerKey": r["answerKey"],
                      "choices": {"text": [c["text"] for c in r["question"]["choices"]],
                                  "label": [c["label"] for c in r["question"]["choices"]]}} for r in rows]}


def arc_easy(d: Path | None) -> Docs:
    return _arc(d, "ARC-Easy")


def arc_challenge(d: Path | None) -> Docs:
    return _arc(d, "ARC-Challenge")


def mmlu(d: Path | None) -> Docs:
    if d is None:
        test, dev = _hub("cais/mmlu", "all"), _hub("cais/mmlu", "all", "dev")
    else:
        test = read_json_records(d / "mmlu/test.jsonl.gz", "mmlu")
        dev = read_json_records(d / "mmlu/dev.jsonl.gz", "mmlu")
    shots: dict[str, list[dict]] = defaultdict(list)
    for r in dev:
        shots[r["subject"]].append(r)
    # lm-eval's MMLU takes the first 5 dev questions of the same subject: stored on each doc.
    return {"test": [r | {"shots": shots[r["subject"]][:5]} for r in round_robin(test, "subject")]}


def boolq(d: Path | None) -> Docs:
    if d is None:
        rows = _hub("aps/super_glue", "boolq", "validation")
    else:
        rows = read_json_records(d / "superglue/BoolQ/val.jsonl", "boolq")
    # SuperGLUE files store the label as true/false, the hub copy as 0/1.
    return {"test": [{"question": r["question"], "passage": r["passage"],
                      "label": int(str(r["label"]).lower() in ("true", "1"))} for r in rows]}


def piqa(d: Path | None) -> Docs:
    if d is None:
        return {"test": _hub("baber/piqa", None, "validation")}
    return {"test": [_parse_piqa(r) for r in read_json_records(d / "commonsense_llm_adapters/piqa_test.json", "piqa")]}


def winogrande(d: Path | None) -> Docs:
    if d is None:
        return {"test": _hub("allenai/winogrande", "winogrande_xl", "validation")}
    path = d / "commonsense_llm_adapters/winogrande_test.json"
    return {"test": [_parse_wino(r) for r in read_json_records(path, "winogrande")]}


def openbookqa(d: Path | None) -> Docs:
    if d is None:
        rows = _hub("allenai/openbookqa", "main")
        return {"test": [{"question": r["question_stem"], "choices": r["choices"]["text"],
                          "label": r["choices"]["label"].index(r["answerKey"].strip())} for r in rows]}
    path = d / "commonsense_llm_adapters/openbookqa_test.json"
    return {"test": [_parse_qa(r) for r in read_json_records(path, "openbookqa")]}


def siqa(d: Path | None) -> Docs:
    if d is None:
        rows = _hub("lighteval/siqa", None, "validation")
        return {"test": [{"question": f"{r['context']} {r['question']}", "label": int(r["label"]) - 1,
                          "choices": [r["answerA"], r["answerB"], r["answerC"]]} for r in rows]}
    path = d / "commonsense_llm_adapters/social_i_qa_test.json"
    return {"test": [_parse_qa(r) for r in read_json_records(path, "siqa")]}


def copa(d: Path | None) -> Docs:
    if d is None:
        return {"test": _hub("aps/super_glue", "copa", "validation")}
    return {"test": read_json_records(d / "superglue/COPA/val.jsonl", "copa")}


def bbh(d: Path | None) -> Docs:
    rows = []
    if d is None:
        import lm_eval  # heavy: only for the hub copy of BBH's few-shot files

        src = Path(lm_eval.__file__).parent / "tasks/bbh/cot_fewshot"
        for f in sorted(src.glob("[a-z]*.yaml")):
            spec = yaml.safe_load(f.read_text())
            shots = "".join(f"Q: {s['input']}\nA: Let's think step by step.\n{s['target']}\n\n"
                            for s in spec["fewshot_config"]["samples"])
            rows += [r | {"subtask": f.stem, "shots": spec["description"] + shots}
                     for r in _hub("SaylorTwift/bbh", f.stem)]
    else:
        files = sorted((d / "bbh/data").glob("*.json"))
        if not files:
            raise DataError(f"task 'bbh': no data files in {d / 'bbh/data'}")
        for f in files:
            prompt_file = d / "bbh/cot_prompts" / f.name.replace(".json", ".txt")
            if not prompt_file.is_file():
                raise DataError(f"task 'bbh': prompt file not found: {prompt_file}")
            text = prompt_file.read_text(encoding="utf-8")
            # The files start with a canary line and a "-----" separator before the prompt.
            text = text.split("-----\n", 1)[-1].strip() + "\n\n"
            rows += [r | {"subtask": f.stem, "shots": text} for r in read_json_records(f, "bbh")]
    return {"test": round_robin(rows, "subtask")}


LOADERS: dict[str, Callable[[Path | None], Docs]] = {
    "gsm8k": gsm8k, "math": math, "humaneval": humaneval, "mbpp": mbpp, "arc_easy": arc_easy,
    "arc_challenge": arc_challenge, "mmlu": mmlu, "boolq": boolq, "piqa": piqa, "winogrande": winogrande,
    "openbookqa": openbookqa, "siqa": siqa, "copa": copa, "bbh": bbh,
}


def load_docs(task: str, data_dir: str | Path | None) -> Docs:
    """Normalised docs of ``task``, from ``data_dir`` (local) or the hub (``data_dir=None``)."""
    d = None if data_dir in (None, "") else Path(data_dir)
    if d is not None and not d.is_dir():
        raise DataError(f"data_dir not found: {d} (needed by task '{task}')")
    return LOADERS[task](d)


def load_gold_docs(path: str | Path) -> Docs:
    """Rows ``{"context", "target"}`` of a held-out file (task ``gold``: bits per byte of each target)."""
    return {"test": read_json_records(Path(path), "gold")}


def load_world_docs(world_dir: str | Path) -> Docs:
    path = Path(world_dir) / "eval.jsonl"
    rows = read_json_records(path, "world")
    for i, r in enumerate(rows, 1):
        missing = [k for k in ("prompt", "answer", "kind") if k not in r]
        if missing:
            raise DataError(f"task 'world': {path} line {i}: missing key(s) {', '.join(missing)}")
    return {"test": rows}
