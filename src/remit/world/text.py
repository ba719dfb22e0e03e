"""General text of the embedded world: simple-English stories and facts over a small vocabulary.

The text has structure a ~1M-parameter model can pick up in minutes: a fixed, consistent
knowledge base (every animal has one home, one sound, one food), stories that keep track
of their hero, pronoun and objects, and small counting episodes whose numbers add up.

    from remit.world.text import general_doc
    doc = general_doc(random.Random(0))
"""

from __future__ import annotations

import random

GIRLS = ["Ann", "Mia", "Lily", "Emma", "Zoe", "Lucy", "Ruby", "Sara", "Nora", "Ella", "Ivy", "Kim", "Rose", "Amy",
         "Eve", "Jane", "Lena", "Maya", "Tess", "Una"]
BOYS = ["Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Finn", "Dan", "Eli", "Noah", "Owen", "Paul", "Ray", "Tim", "Cy",
        "Bob", "Hugo", "Ivan", "Joe", "Ned"]
NAMES = GIRLS + BOYS

# name -> (home, sound, food, ability). Fixed, so facts are consistent across documents.
ANIMALS = {
    "dog": ("house", "bark", "bones", "run fast"),
    "cat": ("house", "meow", "fish", "climb trees"),
    "cow": ("farm", "moo", "grass", "give milk"),
    "duck": ("pond", "quack", "bread", "swim"),
    "frog": ("pond", "croak", "flies", "jump high"),
    "bird": ("nest", "sing", "seeds", "fly"),
    "horse": ("farm", "neigh", "hay", "run fast"),
    "sheep": ("farm", "baa", "grass", "grow wool"),
    "pig": ("farm", "oink", "corn", "dig in the mud"),
    "owl": ("tree", "hoot", "mice", "see at night"),
    "bee": ("hive", "buzz", "nectar", "make honey"),
    "fish": ("river", "blub", "worms", "swim"),
    "mouse": ("hole", "squeak", "cheese", "hide"),
    "bear": ("cave", "growl", "honey", "climb trees"),
    "fox": ("den", "yip", "berries", "run fast"),
    "rabbit": ("burrow", "thump", "carrots", "hop"),
}
OBJECTS = ["ball", "kite", "box", "hat", "book", "cup", "key", "drum", "boat", "shell", "stone", "coin", "sock", "map",
           "bell", "toy car", "blanket", "basket", "lamp", "feather"]
COUNTABLE = ["apples", "flowers", "stones", "shells", "cookies", "eggs", "leaves", "stars", "coins", "berries",
             "pencils", "cards"]
PLACES = ["park", "garden", "forest", "beach", "school", "market", "river", "hill", "farm", "town", "lake", "field"]
ADJS = ["red", "blue", "green", "big", "small", "old", "new", "shiny", "soft", "yellow", "round", "tiny", "heavy",
        "bright", "little"]
FEEL_GOOD = ["happy", "glad", "proud", "excited", "calm"]
FEEL_BAD = ["sad", "tired", "scared", "cold", "hungry"]
WEATHER = ["sunny", "rainy", "windy", "cloudy", "snowy", "warm"]
TIMES = ["morning", "afternoon", "evening"]
NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


_SINGULAR = {"berries": "berry", "leaves": "leaf", "cookies": "cookie"}


def count_noun(n: int, plural: str) -> str:
    """``"1 apple"``, ``"3 apples"``."""
    return f"{n} {_SINGULAR.get(plural, plural[:-1]) if n == 1 else plural}"


def pronoun(name: str) -> tuple[str, str, str]:
    """(subject, object, possessive) pronouns for a name."""
    return ("she", "her", "her") if name in GIRLS else ("he", "him", "his")


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _counting_episode(rng: random.Random, name: str) -> list[str]:
    """A few sentences whose numbers really add up (a light form of reasoning inside the text)."""
    he, _, _ = pronoun(name)
    thing = rng.choice(COUNTABLE)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    out = [f"{name} had {count_noun(a, thing)}."]
    if rng.random() < 0.5 or b > a:
        out += [f"Then {he} found {b} more {thing}.", f"Now {he} had {count_noun(a + b, thing)}."]
    else:
        out += [f"Then {he} gave {count_noun(b, thing)} to a friend.", f"Now {he} had {count_noun(a - b, thing)}."]
    return out


def story(rng: random.Random) -> str:
    """A short story with a hero, a friend, an object and a place."""
    name = rng.choice(NAMES)
    friend = rng.choice([n for n in NAMES if n != name])
    animal = rng.choice(list(ANIMALS))
    home, sound, food, ability = ANIMALS[animal]
    he, him, his = pronoun(name)
    obj, adj, place = rng.choice(OBJECTS), rng.choice(ADJS), rng.choice(PLACES)
    out = [rng.choice([
        f"Once upon a time, there was a little {animal} named {name}.",
        f"{name} was a {rng.choice(ADJS)} {animal} who lived in a {home}.",
        f"There once was {article(animal)} {animal} called {name}.",
    ])]
    out.append(f"{cap(he)} liked to eat {food} and to {ability}.")
    weather, time = rng.choice(WEATHER), rng.choice(TIMES)
    out.append(f"One {weather} {time}, {name} went to the {place}.")
    out.append(rng.choice([
        f"There {he} found {article(adj)} {adj} {obj}.",
        f"At the {place}, {he} saw {article(adj)} {adj} {obj} under a tree.",
    ]))
    events = []
    events.append([f"{name} met {friend} at the {place}.",
                   f'"Look at my {obj}!" said {name}.',
                   f'"It is very {adj}," said {friend}.'])
    events.append(_counting_episode(rng, name))
    bad = rng.choice(FEEL_BAD)
    events.append([f"Soon {name} felt {bad}.",
                   {"hungry": f"So {he} ate some {food}.", "tired": f"So {he} went back to {his} {home} to rest.",
                    "cold": f"So {friend} gave {him} a warm blanket.", "sad": f"So {friend} gave {him} a hug.",
                    "scared": f"So {he} held {his} {obj} tight."}[bad]])
    events.append([f"{name} said {sound} to say hello.", f"{friend} laughed and said hello back."])
    rng.shuffle(events)
    for ev in events[: rng.randint(2, len(events))]:
        out += ev
    good = rng.choice(FEEL_GOOD)
    out.append(rng.choice([
        f"At the end of the day, {name} took the {obj} home and felt {good}.",
        f"{name} and {friend} played with the {obj} until it was dark. They were {good}.",
        f"That night, {name} slept well in {his} {home}.",
    ]))
    return " ".join(out)


def facts(rng: random.Random) -> str:
    """A paragraph of true statements from the fixed knowledge base."""
    animals = rng.sample(list(ANIMALS), k=rng.randint(3, 6))
    out = []
    for a in animals:
        home, sound, food, ability = ANIMALS[a]
        templates = [f"A {a} lives in a {home}.", f"A {a} can {ability}.", f"A {a} likes to eat {food}.",
                     f"A {a} says {sound}.", f"The {a} says {sound} and eats {food}."]
        out += rng.sample(templates, k=rng.randint(1, 3))
    if rng.random() < 0.5:
        a, b = rng.randint(0, 5), rng.randint(0, 5)
        out.append(f"{cap(NUM_WORDS[a])} and {NUM_WORDS[b]} make {NUM_WORDS[a + b]}.")
    return " ".join(out)


def qa_about_facts(rng: random.Random) -> str:
    """Question/answer lines about the knowledge base (consistent with :func:`facts`)."""
    out = []
    for a in rng.sample(list(ANIMALS), k=rng.randint(2, 4)):
        home, sound, food, _ = ANIMALS[a]
        q = rng.choice([(f"Where does a {a} live?", f"A {a} lives in a {home}."),
                        (f"What does a {a} eat?", f"A {a} eats {food}."),
                        (f"What does a {a} say?", f"A {a} says {sound}.")])
        out.append(f"Q: {q[0]} A: {q[1]}")
    return "\n".join(out)


def general_doc(rng: random.Random, min_chars: int = 300) -> str:
    """One general-text document: a few paragraphs of stories, facts and simple Q/A."""
    parts: list[str] = []
    while sum(len(p) for p in parts) < min_chars:
        r = rng.random()
        parts.append(story(rng) if r < 0.65 else facts(rng) if r < 0.85 else qa_about_facts(rng))
    return "\n\n".join(parts)
