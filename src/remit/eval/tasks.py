"""The benchmark table: one line per task (shots, prompt, scoring), turned into lm-eval tasks.

Shot counts and prompt formats follow lm-eval 0.4.13's own task YAMLs (named in ``like``):

| task          | kind | shots | prompt (lm-eval task)                               | metrics                          |
|---------------|------|-------|-----------------------------------------------------|----------------------------------|
| gsm8k         | math | 5     | "Question: q\\nAnswer:" (gsm8k)                      | exact_match (math-verify), bpb   |
| math          | math | 4     | Minerva "Problem:\\n..\\n\\nSolution:" (minerva_math) | exact_match (math-verify), bpb   |
| humaneval     | code | 0     | the function prompt (humaneval)                     | pass@1 greedy, pass@k sampled, bpb |
| mbpp          | code | 3     | "You are an expert Python programmer..." (mbpp)     | pass@1 greedy, pass@k sampled, bpb |
| arc_easy      | mc   | 0     | "Question: q\\nAnswer:" (arc_easy)                   | acc, acc_norm, margin            |
| arc_challenge | mc   | 0     | as arc_easy (arc_challenge)                         | acc, acc_norm, margin            |
| mmlu          | mc   | 5     | same-subject dev shots, "A./B./C./D." (mmlu)        | acc, margin                      |
| boolq         | mc   | 0     | "passage\\nQuestion: q?\\nAnswer:" no/yes (boolq)    | acc, margin                      |
| piqa          | mc   | 0     | "Question: goal\\nAnswer:" (piqa)                    | acc, acc_norm, margin            |
| winogrande    | mc   | 0     | partial scoring of the sentence (winogrande)        | acc, margin                      |
| openbookqa    | mc   | 0     | the question stem (openbookqa)                      | acc, acc_norm, margin            |
| siqa          | mc   | 0     | "Q: context question\\nA:" (social_iqa)              | acc, margin                      |
| copa          | mc   | 0     | "premise because/therefore" (copa)                  | acc, margin                      |
| bbh           | gen  | 3     | CoT prompts, "Let's think step by step." (bbh_cot_fewshot) | exact_match               |

"bpb" = bits per byte and mean per-token loss ("token_loss") of the gold solution given the 0-shot
prompt (a companion loglikelihood task). "margin" = log p(gold) - max log p(wrong option).
Generation is greedy; ``code_samples > 0`` adds ``sampled_pass@k`` (temperature 0.8, top_p 0.95).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from remit.errors import ConfigError
from remit.eval import scoring
from remit.eval.data import load_docs, load_gold_docs, load_world_docs

PAPER10 = ["gsm8k", "math", "humaneval", "mbpp", "arc_easy", "arc_challenge", "mmlu", "boolq", "piqa", "winogrande"]
EXTRA = ["bbh", "openbookqa", "siqa", "copa"]
SUITES = {"paper10": PAPER10, "world": ["world"], "extra": EXTRA, "gold": ["gold"]}


def _letters(doc: dict) -> str:
    return "".join(f"\n{'ABCD'[i]}. {c}" for i, c in enumerate(doc["choices"]))


def _mmlu(doc: dict) -> str:
    subject = doc["subject"].replace("_", " ")
    shots = "".join(f"{s['question'].strip()}{_letters(s)}\nAnswer: {'ABCD'[s['answer']]}\n\n" for s in doc["shots"])
    return (f"The following are multiple choice questions (with answers) about {subject}.\n\n"
            f"{shots}{doc['question'].strip()}{_letters(doc)}\nAnswer:")


def _copa(doc: dict) -> str:
    return doc["premise"].strip()[:-1] + " " + {"cause": "because", "effect": "therefore"}[doc["question"]]


def _copa_choices(doc: dict) -> list[str]:
    return [c[0].lower() + c[1:] for c in (doc["choice1"], doc["choice2"])]


def _wino_contexts(doc: dict) -> list[str]:
    i = doc["sentence"].index("_")
    return [doc["sentence"][:i] + o for o in (doc["option1"], doc["option2"])]


def _wino_target(doc: dict) -> str:
    i = doc["sentence"].index("_") + 1
    return doc["sentence"][i:].strip()


def _mbpp(doc: dict) -> str:
    tests = "\n".join(doc["test_list"][:3])
    return (f"You are an expert Python programmer, and here is your task: {doc['text']} "
            f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n")


def _minerva_shots() -> list[dict]:
    # Copied from lm-eval (its module needs antlr4 4.11 just to import).
    return json.loads((Path(__file__).parent / "minerva_math_shots.json").read_text(encoding="utf-8"))["samples"]


@dataclass(frozen=True)
class TaskSpec:
    kind: Literal["mc", "math", "code", "gen"]
    shots: int
    prompt: Callable[[dict], Any]                 # doc_to_text (winogrande: the gold index, lm-eval's convention)
    target: Callable[[dict], str]                 # gold text: few-shot targets and the bpb continuation
    results: Callable[..., dict] | None = None    # per-example scoring for generative tasks
    choices: Callable[[dict], list[str]] | None = None
    gold: Callable[[dict], int] | None = None
    acc_norm: bool = False
    metrics: tuple[str, ...] = ()
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    delimiter: str = " "
    fewshot: dict = field(default_factory=dict)   # lm-eval fewshot_config
    fewshot_split: str | None = None
    program: Callable[[dict, str], str] | None = None  # code: completion -> program run in the sandbox
    bpb: bool = False


TASKS: dict[str, TaskSpec] = {
    "gsm8k": TaskSpec("math", 5, lambda d: f"Question: {d['question']}\nAnswer:", lambda d: d["answer"],
                      results=scoring.gsm8k_results, metrics=("exact_match", "flexible_match"),
                      until=("Question:", "</s>", "<|im_end|>"), fewshot_split="train", bpb=True),
    "math": TaskSpec("math", 4, lambda d: f"Problem:\n{d['problem']}\n\nSolution:", lambda d: d["solution"],
                     results=scoring.math_results, metrics=("exact_match",), until=("Problem:",),
                     fewshot={"sampler": "first_n", "samples": _minerva_shots}, bpb=True),
    "humaneval": TaskSpec("code", 0, lambda d: d["prompt"], lambda d: d["canonical_solution"], delimiter="",
                          until=("\nclass", "\ndef", "\n#", "\nif", "\nprint"), max_gen_toks=1024,
                          program=scoring.humaneval_program, bpb=True),
    "mbpp": TaskSpec("code", 3, _mbpp, lambda d: d["code"].replace("\r\n", "\n"), delimiter="", until=("[DONE]",),
                     fewshot={"sampler": "first_n", "doc_to_target": lambda d: d["code"] + "\n[DONE]"},
                     fewshot_split="prompt", program=scoring.mbpp_program, bpb=True),
    "arc_easy": TaskSpec("mc", 0, lambda d: f"Question: {d['question']}\nAnswer:", lambda d: "",
                         choices=lambda d: d["choices"]["text"], acc_norm=True,
                         gold=lambda d: d["choices"]["label"].index(d["answerKey"])),
    "arc_challenge": TaskSpec("mc", 0, lambda d: f"Question: {d['question']}\nAnswer:", lambda d: "",
                              choices=lambda d: d["choices"]["text"], acc_norm=True,
                              gold=lambda d: d["choices"]["label"].index(d["answerKey"])),
    # MMLU: 5 shots, put in the prompt by _mmlu (same subject's first dev questions, as lm-eval).
    "mmlu": TaskSpec("mc", 0, _mmlu, lambda d: "", choices=lambda d: ["A", "B", "C", "D"],
                     gold=lambda d: int(d["answer"])),
    "boolq": TaskSpec("mc", 0, lambda d: f"{d['passage']}\nQuestion: {d['question']}?\nAnswer:", lambda d: "",
                      choices=lambda d: ["no", "yes"], gold=lambda d: int(d["label"])),
    "piqa": TaskSpec("mc", 0, lambda d: f"Question: {d['goal']}\nAnswer:", lambda d: "",
                     choices=lambda d: [d["sol1"], d["sol2"]], gold=lambda d: int(d["label"]), acc_norm=True),
    "winogrande": TaskSpec("mc", 0, lambda d: int(d["answer"]) - 1, _wino_target, choices=_wino_contexts,
                           gold=lambda d: int(d["answer"]) - 1),
    "openbookqa": TaskSpec("mc", 0, lambda d: d["question"], lambda d: "", choices=lambda d: d["choices"],
                           gold=lambda d: int(d["label"]), acc_norm=True),
    "siqa": TaskSpec("mc", 0, lambda d: f"Q: {d['question']}\nA:", lambda d: "", choices=lambda d: d["choices"],
                     gold=lambda d: int(d["label"])),
    "copa": TaskSpec("mc", 0, _copa, lambda d: "", choices=_copa_choices, gold=lambda d: int(d["label"])),
    "bbh": TaskSpec("gen", 0, lambda d: f"{d['shots']}Q: {d['input']}\nA: Let's think step by step.\n",
                    lambda d: d["target"], results=scoring.bbh_results, metrics=("exact_match",),
                    until=("</s>", "Q:", "\n\n"), max_gen_toks=1024),
}
KNOWN = sorted([*TASKS, "world", "gold"])


@dataclass
class BuildOptions:
    """Run-time knobs shared by all tasks (filled from EvalConfig)."""

    data_dir: str | None = None
    world_dir: str | None = None
    gold_file: str = ""                 # task 'gold': a jsonl of {"context", "target"} rows
    max_length: int = 2048
    max_gen_toks: int | None = None     # cap on every task's generation budget
    code_samples: int = 0               # > 0: extra sampled run for pass@k
    code_ks: tuple[int, ...] = (1, 5, 10)
    code_timeout_s: float = 10.0
    code_memory_mb: int = 1024
    code_workers: int = 2
    world_template: str = "Question: {prompt}\nAnswer:"
    world_max_gen_toks: int = 128
    world_probe: bool = False           # the style probe: scoring.world_style_results, world_forced_results
    world_probe_style_only: bool = False  # the probe's teacher-forced part only (no forced generations)
    tokenizer: Any = None
    limit: int | None = None            # keep only the first N test docs (what lm-eval's limit scores)


def _first(docs: dict, limit: int | None) -> dict:
    """The test split cut to its first ``limit`` docs before lm-eval builds datasets from it.

    lm-eval's ``limit`` scores the first N test docs, but a task still turns every row into a dataset
    and, for 0-shot tasks, walks the whole test split as its few-shot pool: 38.7k rows for paper10 when
    ``--limit 5`` scores 50. Few-shot splits are kept whole (sampled shots must not change).
    """
    if limit is None or "test" not in docs:
        return docs
    return {**docs, "test": docs["test"][:limit]}


def _gen_budget(default: int, opts: BuildOptions) -> int:
    n = min(default, opts.max_gen_toks or default)
    return max(1, min(n, opts.max_length // 2))  # leave room for the prompt


def _make(name: str, docs_fn: Callable[[], dict], **cfg: Any):
    import datasets
    from lm_eval.api.task import ConfigurableTask

    splits = cfg.pop("splits", None)  # None: every split; 0-shot companions need only "test"

    def custom_dataset(**_: Any) -> datasets.DatasetDict:
        return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in docs_fn().items()
                                     if splits is None or k in splits})

    metrics = cfg.pop("metric_names")
    return ConfigurableTask(config={
        "task": name, "custom_dataset": custom_dataset, "test_split": "test",
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in metrics],
        **cfg})


def build_tasks(name: str, opts: BuildOptions) -> dict[str, Any]:
    """lm-eval Task objects for one benchmark: ``{lm_eval_task_name: Task}`` (main + companions)."""
    if name == "world":
        return _world_tasks(opts)
    if name == "gold":
        return _gold_tasks(opts)
    spec = TASKS[name]
    @functools.cache
    def docs() -> dict:  # loaded once, shared by the main task and its companions
        return _first(load_docs(name, opts.data_dir), opts.limit)

    common = {"doc_to_text": spec.prompt, "doc_to_target": spec.target, "target_delimiter": spec.delimiter,
              "num_fewshot": spec.shots, "fewshot_split": spec.fewshot_split,
              "fewshot_config": dict(spec.fewshot) or None}
    out: dict[str, Any] = {}
    if spec.kind == "mc":
        metrics = ("acc", "acc_norm", "margin") if spec.acc_norm else ("acc", "margin")
        out[name] = _make(name, docs, output_type="multiple_choice", doc_to_choice=spec.choices,
                          process_results=scoring.mc_results(spec.choices, spec.gold, spec.acc_norm),
                          metric_names=metrics, **common)
        return out
    gen = {"until": list(spec.until), "do_sample": False, "max_gen_toks": _gen_budget(spec.max_gen_toks, opts)}
    if spec.kind == "code":
        filt = scoring.code_filter(spec.program, timeout_s=opts.code_timeout_s, memory_mb=opts.code_memory_mb,
                                   workers=opts.code_workers)
        flist = [{"name": "sandbox", "filter": [{"function": "custom", "filter_fn": filt}]}]
        out[name] = _make(name, docs, output_type="generate_until", generation_kwargs=gen, filter_list=flist,
                          process_results=scoring.code_results([1]), metric_names=("pass@1",), **common)
        if opts.code_samples > 0:
            ks = [k for k in opts.code_ks if k <= opts.code_samples]
            sgen = gen | {"do_sample": True, "temperature": 0.8, "top_p": 0.95}
            out[f"{name}:sampled"] = _make(
                f"{name}:sampled", docs, output_type="generate_until", generation_kwargs=sgen, filter_list=flist,
                repeats=opts.code_samples, process_results=scoring.code_results(ks, "sampled_"),
                metric_names=tuple(f"sampled_pass@{k}" for k in ks), **common)
    else:
        out[name] = _make(name, docs, output_type="generate_until", generation_kwargs=gen,
                          process_results=spec.results, metric_names=spec.metrics, **common)
    if spec.bpb:
        prompt, target = spec.prompt, scoring.fit_target(opts.tokenizer, spec.target, opts.max_length)
        out[f"{name}:gold"] = _make(
            f"{name}:gold", docs, output_type="loglikelihood", doc_to_text=prompt,
            doc_to_target=scoring.with_delimiter(target, spec.delimiter), target_delimiter="", num_fewshot=0,
            splits=("test",),
            process_results=scoring.gold_loss_results(opts.tokenizer, prompt, target, spec.delimiter,
                                                      opts.max_length),
            metric_names=("bpb", "token_loss"))
    return out


def _gold_tasks(opts: BuildOptions) -> dict[str, Any]:
    """Bits per byte of given held-out (context, target) pairs: the target verbatim after its context (cut to
    the window as every gold set is, ``scoring.fit_target``)."""
    if not opts.gold_file:
        raise ConfigError("gold_file: required by the 'gold' task (a jsonl of {\"context\", \"target\"} rows)")
    @functools.cache
    def docs() -> dict:
        return _first(load_gold_docs(opts.gold_file), opts.limit)

    def context(d: dict) -> str:
        return d["context"]

    target = scoring.fit_target(opts.tokenizer, lambda d: d["target"], opts.max_length)
    return {"gold": _make("gold", docs, output_type="loglikelihood", doc_to_text=context, doc_to_target=target,
                          target_delimiter="", num_fewshot=0, metric_names=("bpb", "token_loss"),
                          process_results=scoring.gold_loss_results(opts.tokenizer, context, target, "",
                                                                    opts.max_length))}


def _world_tasks(opts: BuildOptions) -> dict[str, Any]:
    if not opts.world_dir:
        raise ConfigError("the 'world' suite needs world_dir=DIR (a folder holding eval.jsonl from `remit world`)")
    @functools.cache
    def docs() -> dict:
        return _first(load_world_docs(opts.world_dir), opts.limit)

    def gold(d: dict) -> str:  # the worked solution when eval.jsonl has one, else the final line alone
        return str(d.get("solution") or f"The answer is {d['answer']}.")

    def prompt(d: dict) -> str:
        return opts.world_template.format(prompt=d["prompt"])

    gen = {"until": ["\n\n", "Question:"], "do_sample": False, "max_gen_toks": _gen_budget(opts.world_max_gen_toks, opts)}
    out = {
        "world": _make("world", docs, output_type="generate_until", doc_to_text=prompt, doc_to_target=gold,
                       target_delimiter=" ", num_fewshot=0, generation_kwargs=gen,
                       process_results=scoring.world_results, metric_names=("exact_match",)),
        "world:gold": _make("world:gold", docs, output_type="loglikelihood", doc_to_text=prompt,
                            doc_to_target=scoring.with_delimiter(gold, " "), target_delimiter="", num_fewshot=0,
                            metric_names=("bpb", "token_loss"),
                            process_results=scoring.gold_loss_results(opts.tokenizer, prompt, gold, " ",
                                                                      opts.max_length)),
    }
    if opts.world_probe:
        out.update(_world_probe_tasks(docs, prompt, gold, gen, forced=not opts.world_probe_style_only))
    return out


def _world_probe_tasks(docs: Callable[[], dict], prompt: Callable[[dict], str], gold: Callable[[dict], str],
                       gen: dict, *, forced: bool = True) -> dict[str, Any]:
    """The style probe: which start the model prefers (teacher-forced, the first word of the worked gold
    solution vs of ``The answer is X.``) and its accuracy when its answer is made to start either way (greedy,
    the start given as lm-eval's ``gen_prefix``, after the chat template's assistant turn in chat mode; left out
    without ``forced``)."""

    def with_starts() -> dict:
        return {k: [{**d, **scoring.world_starts(d["answer"], gold(d))} for d in rows] for k, rows in docs().items()}

    probe = {"doc_to_text": prompt, "doc_to_target": gold, "target_delimiter": " ", "num_fewshot": 0}
    out = {"world:style": _make("world:style", with_starts, output_type="multiple_choice",
                                doc_to_choice=lambda d: [d["worked_start"], d["direct_start"]],
                                metric_names=scoring.WORLD_STYLE_METRICS, process_results=scoring.world_style_results,
                                **(probe | {"doc_to_target": 0}))}
    if not forced:
        return out
    return {
        **out,
        "world:worked": _make("world:worked", with_starts, output_type="generate_until", gen_prefix="worked_start",
                              generation_kwargs=gen, metric_names=("worked_exact_match",),
                              process_results=scoring.world_forced_results("worked"), **probe),
        "world:direct": _make("world:direct", with_starts, output_type="generate_until", gen_prefix="direct_prefix",
                              generation_kwargs=gen, metric_names=("direct_exact_match",),
                              process_results=scoring.world_forced_results("direct"), **probe),
    }
