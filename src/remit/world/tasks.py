"""Task kinds of the embedded world, each with a worked, step-by-step solution and a verifiable answer.

Kinds: ``chain`` (a chain of one-digit additions and subtractions, the embedded default: sized
for the ~1M-parameter models remit trains on a CPU, see ``docs/world.md``), ``arith``
(multi-step arithmetic), ``word`` (2-3 step word problems), ``program`` (tiny Python programs
and what they print), ``logic`` (ordering puzzles). Every solution ends with the line
``The answer is X.`` (see :mod:`remit.world.checkers`). ``difficulty`` (1-3) controls the number
of steps and the size of the numbers; for ``chain`` a task has 1 to ``difficulty + 1`` steps, so
every difficulty keeps easy items in the mix.

    from remit.world.tasks import make_task
    t = make_task("arith", random.Random(0), difficulty=1)
    t.prompt, t.solution, t.answer
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from remit.errors import ConfigError
from remit.world.text import COUNTABLE, NAMES, count_noun, pronoun

KINDS = ("chain", "arith", "word", "program", "logic")
MAX_NUMBER = {1: 20, 2: 50, 3: 100}


@dataclass(frozen=True)
class Task:
    kind: str
    prompt: str
    solution: str  # worked steps; the last sentence is "The answer is X."
    answer: str


def final_line(answer: str) -> str:
    return f"The answer is {answer}."


def chain(rng: random.Random, difficulty: int, steps: tuple[int, int] | None = None, hard: float = 0.0) -> Task:
    """``What is 7 + 5 - 3?`` -> ``7 + 5 = 12. 12 - 3 = 9. The answer is 9.`` (operands 1-9, never below 0).

    Each step is one addition fact plus two copies (the running value and the next operand), which a
    tiny transformer learns; the answer alone needs every step at once, which it mostly does not.
    ``steps`` = (min, max) steps (default 1 to ``difficulty + 1``); with probability ``hard`` a step is
    ``* 2`` or ``* 3`` of the running value (:func:`hard_step`), the calibrated world's step that pre-training
    rarely shows (docs/world.md). Operands stay one token, so the question keeps the fixed stride the copy
    skill is learned on; a question with such a step is computed from left to right and says so.
    """
    lo, hi = steps or (1, difficulty + 1)
    n_ops = rng.randint(lo, hi)
    value = rng.randint(1, 9)
    expr, lines, mixed, seen_sum = str(value), [], False, False
    for _ in range(n_ops):
        if hard > 0 and rng.random() < hard:
            op, b, new = hard_step(rng, value)
        else:
            b = rng.randint(1, 9)
            op = "-" if b <= value and rng.random() < 0.5 else "+"
            new = value + b if op == "+" else value - b
        mixed = mixed or (op == "*" and seen_sum)
        seen_sum = seen_sum or op != "*"
        expr += f" {op} {b}"
        lines.append(f"{value} {op} {b} = {new}.")
        value = new
    answer = str(value)
    prompt = f"What is {expr}{' from left to right' if mixed else ''}?"
    return Task("chain", prompt, " ".join(lines + [final_line(answer)]), answer)


def hard_step(rng: random.Random, value: int) -> tuple[str, int, int]:
    """(op, operand, new value) of a hard chain step: ``* 2`` or ``* 3`` of the running value, a multi-digit
    product with carries once the value has two digits. (Two-digit operands and parentheses were tried
    first: they break the question's fixed stride, and the pre-training checkpoint did not learn to copy
    operands at all; benchmarks/results/world/calibration/README.md.)"""
    b = rng.choice((2, 3))
    return "*", b, value * b


def with_slip(task: Task, rng: random.Random) -> str:
    """``task``'s worked solution with one arithmetic slip: one step's result off by one, the chain going on
    from the wrong value, so the final answer is wrong too (a ``chain`` task; other kinds come back unchanged).
    The mechanism control of the calibrated world: only a correctness reward removes such slips. A slip down
    that would take a later value below 0 (which no chain task shows) is a slip up instead."""
    if task.kind != "chain":
        return task.solution
    tokens = task.prompt.removeprefix("What is ").removesuffix("?").removesuffix(" from left to right").split()
    first, ops = int(tokens[0]), list(zip(tokens[1::2], map(int, tokens[2::2])))
    at, down = rng.randrange(len(ops)), rng.random() < 0.5

    def run(shift: int) -> list[tuple[int, str, int, int]] | None:
        value, steps = first, []
        for i, (op, b) in enumerate(ops):
            new = (value + b if op == "+" else value - b if op == "-" else value * b) + (shift if i == at else 0)
            if new < 0:
                return None
            steps.append((value, op, b, new))
            value = new
        return steps

    steps = (down and run(-1)) or run(1)
    return " ".join([f"{v} {op} {b} = {new}." for v, op, b, new in steps] + [final_line(str(steps[-1][3]))])


def arith(rng: random.Random, difficulty: int) -> Task:
    hi = MAX_NUMBER[difficulty]
    n_ops = rng.randint(1, 1 + difficulty)
    value = rng.randint(1, hi)
    expr, steps, has_sum = str(value), [], False
    for _ in range(n_ops):
        ops = ["+", "-"] + (["*"] if difficulty >= 2 else [])
        op = rng.choice(ops)
        if op == "-" and value == 0:
            op = "+"
        if op == "+":
            b = rng.randint(1, hi)
            new = value + b
        elif op == "-":
            b = rng.randint(1, value)
            new = value - b
        else:
            b = rng.randint(2, 9 if difficulty == 2 else 12)
            new = value * b
        if op == "*" and has_sum:
            expr = f"({expr})"
        expr = f"{expr} {op} {b}"
        has_sum = has_sum or op in "+-"
        steps.append(f"{value} {op} {b} = {new}.")
        value = new
    answer = str(value)
    return Task("arith", f"What is {expr}?", " ".join(steps + [final_line(answer)]), answer)


def word(rng: random.Random, difficulty: int) -> Task:
    name = rng.choice(NAMES)
    he, _, _ = pronoun(name)
    thing = rng.choice(COUNTABLE)
    friend = rng.choice([n for n in NAMES if n != name])
    hi = MAX_NUMBER[difficulty] // 2
    value = rng.randint(2, hi)
    prompt = [f"{name} has {value} {thing}."]
    steps = [f"{name} starts with {value} {thing}."]
    n_steps = rng.randint(2, 1 + difficulty) if difficulty > 1 else 2
    for i in range(n_steps):
        then = "Then " if i else ""
        kinds = ["more", "less"] + (["bags", "double"] if difficulty >= 2 else [])
        k = rng.choice(kinds)
        if k == "less" and value < 2:
            k = "more"
        if k == "more":
            b = rng.randint(1, hi)
            verb = rng.choice(["buys", "finds", "gets"])
            more = f"{b} more {thing if b > 1 else count_noun(1, thing)[2:]}"
            prompt.append(f"{then}{he} {verb} {more}." if then else f"{name} {verb} {more}.")
            steps.append(f"{name} {verb} {b} more: {value} + {b} = {value + b}.")
            value += b
        elif k == "less":
            b = rng.randint(1, value)
            what = rng.choice([f"gives {count_noun(b, thing)} to {friend}", f"loses {count_noun(b, thing)}",
                               f"uses {count_noun(b, thing)}"])
            prompt.append(f"{then}{he} {what}." if then else f"{name} {what}.")
            steps.append(f"{name} {what.split(' ')[0]} {b}: {value} - {b} = {value - b}.")
            value -= b
        elif k == "bags":
            n, each = rng.randint(2, 4), rng.randint(2, 6)
            prompt.append(f"{then}{he} gets {n} bags with {each} {thing} in each bag.")
            steps.append(f"{n} bags of {each} make {n} * {each} = {n * each}. {value} + {n * each} = {value + n * each}.")
            value += n * each
        else:
            prompt.append(f"{then}{friend} doubles the number of {thing} {name} has.")
            steps.append(f"Doubling gives {value} * 2 = {value * 2}.")
            value *= 2
    prompt = [prompt[0]] + [p[0].upper() + p[1:] for p in prompt[1:]]
    prompt.append(f"How many {thing} does {name} have now?")
    answer = str(value)
    steps.append(f"So {name} has {count_noun(value, thing)}. " + final_line(answer))
    return Task("word", " ".join(prompt), " ".join(steps), answer)


def program(rng: random.Random, difficulty: int) -> Task:
    """A tiny program whose output is computed while it is generated (no exec)."""
    names = rng.sample(["x", "y", "z", "a", "b", "n", "total", "count"], k=2)
    v1, v2 = names
    env = {v1: rng.randint(1, 9), v2: rng.randint(1, 9)}
    lines = [f"{v1} = {env[v1]}", f"{v2} = {env[v2]}"]
    steps = [f"{v1} starts at {env[v1]} and {v2} starts at {env[v2]}."]
    for _ in range(rng.randint(1, difficulty + 1)):
        kinds = ["op", "mix"] + (["loop", "if"] if difficulty >= 2 else [])
        k = rng.choice(kinds)
        tgt = rng.choice(names)
        other = v2 if tgt == v1 else v1
        old = env[tgt]
        if k == "op":
            op, c = rng.choice(["+", "-", "*"]), rng.randint(2, 5)
            new = {"+": old + c, "-": old - c, "*": old * c}[op]
            lines.append(f"{tgt} = {tgt} {op} {c}")
            steps.append(f"{tgt} = {old} {op} {c} = {new}.")
        elif k == "mix":
            op = rng.choice(["+", "-"])
            new = old + env[other] if op == "+" else old - env[other]
            lines.append(f"{tgt} = {tgt} {op} {other}")
            steps.append(f"{tgt} = {old} {op} {env[other]} = {new}.")
        elif k == "loop":
            n, c = rng.randint(2, 4), rng.randint(1, 5)
            new = old + n * c
            lines += [f"for i in range({n}):", f"    {tgt} = {tgt} + {c}"]
            steps.append(f"The loop adds {c} to {tgt} {n} times: {old} + {n} * {c} = {new}.")
        else:
            c, d = rng.randint(1, 12), rng.randint(1, 5)
            taken = old > c
            new = old - d if taken else old + d
            lines += [f"if {tgt} > {c}:", f"    {tgt} = {tgt} - {d}", "else:", f"    {tgt} = {tgt} + {d}"]
            cmp = "is" if taken else "is not"
            steps.append(f"{old} {cmp} greater than {c}, so {tgt} = {old} {'-' if taken else '+'} {d} = {new}.")
        env[tgt] = new
    op = rng.choice(["+", "*", "-"]) if difficulty >= 2 else rng.choice(["+", "-"])
    out = {"+": env[v1] + env[v2], "-": env[v1] - env[v2], "*": env[v1] * env[v2]}[op]
    lines.append(f"print({v1} {op} {v2})")
    steps.append(f"It prints {v1} {op} {v2} = {env[v1]} {op} {env[v2]} = {out}.")
    answer = str(out)
    prompt = "What does this program print?\n" + "\n".join(lines)
    return Task("program", prompt, " ".join(steps + [final_line(answer)]), answer)


RELATIONS = [("taller", "shorter", "tallest", "shortest"), ("older", "younger", "oldest", "youngest"),
             ("faster", "slower", "fastest", "slowest"), ("heavier", "lighter", "heaviest", "lightest")]


def logic(rng: random.Random, difficulty: int) -> Task:
    k = 2 + difficulty
    people = rng.sample(NAMES, k=k)  # true order: people[0] is the most
    more, less, most, least = rng.choice(RELATIONS)
    facts = []
    for a, b in zip(people, people[1:]):
        facts.append(f"{a} is {more} than {b}." if rng.random() < 0.5 else f"{b} is {less} than {a}.")
    rng.shuffle(facts)
    ask_most = rng.random() < 0.5
    answer = people[0] if ask_most else people[-1]
    prompt = " ".join(facts) + f" Who is the {most if ask_most else least}?"
    chain = [f"{a} is {more} than {b}." for a, b in zip(people, people[1:])]
    steps = chain + [f"So the order from {most} to {least} is {', '.join(people)}.", final_line(answer)]
    return Task("logic", prompt, " ".join(steps), answer)


GENERATORS = {"chain": chain, "arith": arith, "word": word, "program": program, "logic": logic}
ANSWER_TYPE = {"chain": "number", "arith": "number", "word": "number", "program": "number", "logic": "name"}


def make_task(kind: str, rng: random.Random, difficulty: int = 1, steps: tuple[int, int] | None = None,
              hard: float = 0.0) -> Task:
    """A task of ``kind``; ``steps`` and ``hard`` are the chain kind's (see :func:`chain`)."""
    if kind not in GENERATORS:
        raise ConfigError(f"unknown world task kind '{kind}'. Accepted values: {', '.join(KINDS)}.")
    if difficulty not in MAX_NUMBER:
        raise ConfigError(f"difficulty={difficulty!r} is out of range: it must be 1, 2 or 3.")
    if kind == "chain":
        return chain(rng, difficulty, steps, hard)
    return GENERATORS[kind](rng, difficulty)


__all__ = ["KINDS", "Task", "make_task", "final_line", "ANSWER_TYPE"]
