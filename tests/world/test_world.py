"""The embedded world: determinism, correct worked solutions, held-out eval, checkers, stage output."""

from __future__ import annotations

import contextlib
import io
import json
import random
import re

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.world import WorldConfig, check_answer, extract_answer, generate_world, has_answer_format, make_task
from remit.world.generate import qa_text

CLASSIC = dict(kinds=["arith", "word", "program", "logic"], direct_frac=0.0)  # the world before `chain`
SMALL = dict(n_pretrain_docs=200, n_midtrain_docs=100, n_sft=200, n_rl=100, n_eval=50, pretrain_reasoning_frac=0.1,
             difficulty=1, **CLASSIC)


@pytest.fixture(scope="module")
def small_world():
    return generate_world(WorldConfig(**SMALL))


def test_deterministic_and_seed_dependent(small_world):
    assert generate_world(WorldConfig(**SMALL)) == small_world
    other = generate_world(WorldConfig(seed=1, **SMALL))
    assert other["eval"] != small_world["eval"] and other["pretrain"] != small_world["pretrain"]


def test_split_shapes(small_world):
    w = small_world
    assert {k: len(v) for k, v in w.items()} == {"pretrain": 200, "midtrain": 100, "sft": 200, "rl": 100, "eval": 200}
    assert all(set(r) == {"text"} and r["text"] for r in w["pretrain"] + w["midtrain"])
    assert all(set(r) == {"prompt", "response", "kind", "answer"} for r in w["sft"])
    assert all(set(r) == {"prompt", "answer", "kind"} for r in w["rl"])
    assert all(set(r) == {"prompt", "answer", "kind", "solution"} for r in w["eval"])
    assert all(r["solution"].rstrip().endswith(f"The answer is {r['answer']}.") for r in w["eval"])
    for split in ("sft", "rl", "eval"):  # every kind equally represented
        counts = {k: sum(r["kind"] == k for r in w[split]) for k in CLASSIC["kinds"]}
        assert set(counts.values()) == {len(w[split]) // 4}, (split, counts)
    # midtrain is reasoning-rich, pretrain mostly general text
    frac = {s: sum("Question: " in r["text"] for r in w[s]) / len(w[s]) for s in ("pretrain", "midtrain")}
    assert frac["pretrain"] < 0.25 and frac["midtrain"] > 0.6


def test_eval_is_held_out(small_world):
    w = small_world
    ev = [r["prompt"] for r in w["eval"]]
    assert len(set(ev)) == len(ev)
    train_prompts = {r["prompt"] for r in w["sft"] + w["rl"]}
    assert not train_prompts & set(ev)
    docs = "\n\n".join(r["text"] for r in w["pretrain"] + w["midtrain"])
    assert sum(f"Question: {p}\nAnswer:" in docs for p in ev) == 0
    assert docs.count("Question: ") > 300  # the check above had plenty of chances to fail


def test_sft_responses_are_correct_and_formatted(small_world):
    for r in small_world["sft"]:
        assert check_answer(r["kind"], r["response"], r["answer"]), r
        assert has_answer_format(r["response"]) and r["response"].endswith(f"The answer is {r['answer']}.")
        assert not check_answer(r["kind"], r["response"].replace(f"is {r['answer']}.", "is 99999."), r["answer"])


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_arith_and_program_answers_match_python(difficulty):
    rng = random.Random(difficulty)
    for _ in range(150):
        t = make_task("arith", rng, difficulty)
        expr = t.prompt.removeprefix("What is ").removesuffix("?")
        assert str(eval(expr)) == t.answer, t  # parentheses make Python's precedence = the worked order
        p = make_task("program", rng, difficulty)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(p.prompt.split("\n", 1)[1], {})  # our own generated program, not model output
        assert buf.getvalue().strip() == p.answer, p


@pytest.mark.parametrize("difficulty", [1, 3])
def test_word_steps_add_up(difficulty):
    rng = random.Random(10 + difficulty)
    for _ in range(150):
        t = make_task("word", rng, difficulty)
        eqs = re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)", t.solution)
        assert eqs
        for a, op, b, c in eqs:
            assert eval(f"{a} {op} {b}") == int(c), t
        assert eqs[-1][3] == t.answer and int(t.answer) >= 0


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_logic_answer_follows_from_the_facts(difficulty):
    rng = random.Random(20 + difficulty)
    for _ in range(100):
        t = make_task("logic", rng, difficulty)
        facts = re.findall(r"(\w+) is (\w+) than (\w+)\.", t.prompt)
        assert len(facts) == difficulty + 1
        more_words = {"taller", "older", "faster", "heavier"}
        beats = {(a, b) if rel in more_words else (b, a) for a, rel, b in facts}  # (more, less)
        people = {x for pair in beats for x in pair}
        top = [p for p in people if all(b != p for _, b in beats)]
        bottom = [p for p in people if all(a != p for a, _ in beats)]
        assert len(top) == len(bottom) == 1
        asked_most = re.search(r"Who is the (tallest|oldest|fastest|heaviest)\?", t.prompt) is not None
        assert t.answer == (top[0] if asked_most else bottom[0]), t


def test_extract_and_check_answer():
    assert extract_answer("23 + 45 = 68. 68 - 12 = 56. The answer is 56.") == "56"
    assert extract_answer("The answer is 3.\nNo wait.\nThe answer is 4.") == "4"
    assert extract_answer("The answer is 3.5.") == "3.5"
    assert extract_answer("the answer is: **-7**") == "-7"
    assert extract_answer("no answer here") is None and extract_answer(None) is None
    assert check_answer("arith", "The answer is 56.0.", "56") and check_answer("word", "The answer is 1,000.", "1000")
    assert not check_answer("arith", "The answer is 57.", "56")
    assert check_answer("logic", "So... The answer is ann.", "Ann") and not check_answer("logic", "The answer is Bob.", "Ann")
    assert not check_answer("program", "56", "56")  # the final-line format is required
    assert has_answer_format("x\nThe answer is 5.") and not has_answer_format("The answer is 5. But maybe 6")


def test_default_world_size():
    w = generate_world(WorldConfig())  # ~1-2 s here; timing belongs in benchmarks/, not in a test that load can fail
    chars = {s: sum(len(r["text"]) for r in w[s]) for s in ("pretrain", "midtrain")}
    assert 4.2e6 < chars["pretrain"] < 5.2e6 and 0.7e6 < chars["midtrain"] < 1.0e6, chars  # ~2 chars a token
    assert len(w["eval"]) == 500 and {r["kind"] for r in w["eval"]} == {"chain"}
    direct = sum(r["response"].startswith("The answer is") for r in w["sft"]) / len(w["sft"])
    assert 0.65 < direct < 0.75  # direct_frac: most training answers skip the steps


def test_config_validation():
    with pytest.raises(ConfigError, match="difficulty"):
        load_config(WorldConfig, None, ["difficulty=5"])
    with pytest.raises(ConfigError, match="kinds: unknown kind 'chess'"):
        load_config(WorldConfig, None, ["kinds=[arith, chess]"])
    cfg = load_config(WorldConfig, None, ["kinds=arith,logic", "n_eval=3", "n_sft=4", "n_rl=2", "n_pretrain_docs=2",
                                          "n_midtrain_docs=2"])
    w = generate_world(cfg)
    assert {r["kind"] for r in w["eval"] + w["sft"] + w["rl"]} == {"arith", "logic"}


def test_stage_writes_files_and_reuses_them(tmp_path):
    from remit.cli import main
    from remit.manifest import read_manifest
    from remit.world.stage import FILES

    out = tmp_path / "world"
    args = ["world", f"out_dir={out}"] + [f"{k}={v}" for k, v in SMALL.items()]
    assert main(args) == 0
    rows = {s: [json.loads(line) for line in (out / f).read_text().splitlines()] for s, f in FILES.items()}
    assert rows == generate_world(WorldConfig(out_dir=str(out), **SMALL))
    m = read_manifest(out)
    assert m["stage"] == "world" and m["splits"]["eval"]["rows"] == 200 and (out / "config.yaml").is_file()
    assert qa_text(make_task("arith", random.Random(0))).startswith("Question: What is ")
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert main(args) == 0 and (out / "manifest.json").stat().st_mtime_ns == stamp  # complete: skipped
    assert main(args[:-1] + ["n_eval=40"]) == 0 and read_manifest(out)["splits"]["eval"]["rows"] == 160


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_chain_steps_and_answer(difficulty):
    rng = random.Random(30 + difficulty)
    n_ops = set()
    for _ in range(300):
        t = make_task("chain", rng, difficulty)
        expr = t.prompt.removeprefix("What is ").removesuffix("?")
        assert str(eval(expr)) == t.answer, t
        steps = re.findall(r"(\d+) ([-+]) (\d+) = (\d+)\.", t.solution)
        assert len(steps) == len(re.findall(r" [-+] ", expr)) and steps[-1][3] == t.answer
        for a, op, b, c in steps:
            assert eval(f"{a} {op} {b}") == int(c) >= 0 and 1 <= int(b) <= 9, t
        n_ops.add(len(steps))
    assert n_ops == set(range(1, difficulty + 2))  # easy items stay in the mix at every difficulty


def test_direct_frac_writes_the_answer_alone():
    w = generate_world(WorldConfig(n_pretrain_docs=300, n_midtrain_docs=0, n_sft=400, n_rl=0, n_eval=50,
                                   direct_frac=0.6, pretrain_reasoning_frac=1.0))
    direct = [r["response"] == f"The answer is {r['answer']}." for r in w["sft"]]
    assert 0.5 < sum(direct) / len(direct) < 0.7
    assert all(check_answer(r["kind"], r["response"], r["answer"]) for r in w["sft"])
    docs = "\n".join(r["text"] for r in w["pretrain"])
    answers = re.findall(r"\nAnswer: (.*)", docs)
    share = sum(a.startswith("The answer is") for a in answers) / len(answers)
    assert 0.5 < share < 0.7, share
    assert all(r["solution"] != f"The answer is {r['answer']}." for r in w["eval"])  # gold stays worked
    none = generate_world(WorldConfig(n_pretrain_docs=0, n_midtrain_docs=0, n_sft=100, n_rl=0, n_eval=5,
                                      direct_frac=0.0))
    assert not any(r["response"].startswith("The answer is") for r in none["sft"])


def test_settings_that_would_fail_later_are_refused_up_front():
    with pytest.raises(ConfigError, match=r"kinds: give at least one task kind"):
        load_config(WorldConfig, None, ["kinds=[]"])
    # chain at difficulty 1 has about two thousand distinct prompts: 1100 held out would leave too few to train on
    with pytest.raises(ConfigError, match=r"n_eval=1100: kind 'chain' at difficulty 1 has about \d+ distinct prompts.*"
                                          r"lower n_eval to \d+ or raise difficulty"):
        load_config(WorldConfig, None, ["kinds=[chain]", "difficulty=1", "n_eval=1100"])
    assert load_config(WorldConfig, None, ["kinds=[chain]", "difficulty=1", "n_eval=500"]).n_eval == 500


def _pairs(text: str) -> list[tuple[str, str]]:
    plain = re.findall(r"Question: (.*?)\nAnswer: (.*?)(?=\n\nQuestion: |\Z)", text, re.S)
    chat = re.findall(r"<\|bos\|><\|user\|>\n(.*?)<\|end\|>\n<\|assistant\|>\n(.*?)<\|eos\|>", text, re.S)
    return plain or chat


def test_midtrain_chat_frac_rewrites_a_share_of_the_task_documents():
    base = dict(n_pretrain_docs=0, n_midtrain_docs=400, n_sft=0, n_rl=0, n_eval=20)
    plain = generate_world(WorldConfig(**base))["midtrain"]
    half = generate_world(WorldConfig(**base, midtrain_chat_frac=0.5))["midtrain"]
    every = generate_world(WorldConfig(**base, midtrain_chat_frac=1.0))["midtrain"]
    tasks = [i for i, r in enumerate(plain) if r["text"].startswith("Question: ")]
    assert 250 < len(tasks) < 350  # midtrain_general_frac 0.25
    chat = [i for i, r in enumerate(half) if r["text"].startswith("<|bos|><|user|>\n")]
    assert set(chat) <= set(tasks) and 0.4 < len(chat) / len(tasks) < 0.6
    for i, (p, h, e) in enumerate(zip(plain, half, every)):
        if i in tasks:  # the same tasks and solutions, only the format differs
            assert _pairs(p["text"]) == _pairs(h["text"]) == _pairs(e["text"]) and _pairs(p["text"])
            assert e["text"].startswith("<|bos|><|user|>\n") and e["text"].endswith("<|eos|>")
            assert "\n\n<|bos|>" in e["text"] or len(_pairs(e["text"])) == 1
        else:
            assert p == h == e  # general text untouched
    # 0 leaves the config hash (and so the reuse of worlds made before the key) unchanged
    from remit.config import to_dict

    assert "midtrain_chat_frac" not in to_dict(WorldConfig())
    assert to_dict(WorldConfig(midtrain_chat_frac=0.5))["midtrain_chat_frac"] == 0.5
    with pytest.raises(ConfigError, match="midtrain_chat_frac"):
        load_config(WorldConfig, None, ["midtrain_chat_frac=1.5"])


def test_midtrain_chat_frac_reproduces_the_committed_chat_mix_file(tmp_path):
    """The flywheel experiment's world (seed 0, 500 held-out tasks) with half of its task documents as chats:
    the bytes benchmarks/flywheel/chatmix.py --frac 0.5 wrote for the committed chat-mix follow-up (798 of 1594
    task documents, 3549 tasks: benchmarks/results/flywheel/chatmix.md)."""
    import hashlib

    from remit.world import run

    out = run(WorldConfig(out_dir=str(tmp_path / "w"), n_eval=500, n_pretrain_docs=0, midtrain_chat_frac=0.5))
    data = (out / "midtrain.jsonl").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "38c47c5c2015b9b194a23b140f50b8e435438f77d85581ff5f667b43cac1599d"
    texts = [json.loads(x)["text"] for x in data.decode().splitlines()]
    chats = [t for t in texts if t.startswith("<|bos|>")]
    assert (len(texts), len(chats), sum(len(_pairs(t)) for t in chats)) == (2150, 798, 3549)
