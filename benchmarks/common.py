"""Helpers shared by the benchmark scripts: percentiles, tables, synthetic statements."""

from __future__ import annotations

import random

import numpy as np

NAMES = ["Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal",
         "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
         "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe"]
PLACES = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Berlin", "Lima", "Hanoi", "Oslo", "Cairo",
          "Denver", "Porto", "Seoul", "Dublin", "Austin", "Quito", "Perth"]
ACTIVITIES = ["hiking", "chess", "pottery", "salsa dancing", "rock climbing", "baking bread",
              "birdwatching", "sailing", "jazz piano", "trail running", "gardening", "sushi",
              "board games", "photography", "kayaking", "knitting", "karaoke", "tennis"]
ORGS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
        "Vandelay", "Soylent", "Tyrell"]
PETS = ["dog", "cat", "parrot", "rabbit", "hamster"]
PET_NAMES = ["Tommy", "Miso", "Rex", "Luna", "Pepper", "Biscuit", "Kiwi", "Shadow"]
KIN = ["friend", "sister", "brother", "colleague", "cousin", "neighbor"]

TEMPLATES = [
    "I enjoy {a}",
    "I dislike {a}",
    "My {k} {n} lives in {p}",
    "My {k} {n} works at {o}",
    "{n} and {m} both enjoy {a}",
    "My {k} {n} has a {pet} named {pn}",
    "I went {a} with {n} in {p} last {day}",
    "{n} recommended a cafe near the station in {p}",
    "We talked about {a} and the weather in {p} on {day}",
    "{n} is planning a trip to {p} to try {a}",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


SYLLABLES = ["ka", "lo", "mi", "ren", "tov", "sa", "dur", "bel", "qui", "zan", "po", "ler",
             "vi", "gor", "tha", "mun"]


def made_up_names(count: int, seed: int = 0) -> list[str]:
    """`count` distinct made-up person names ("Kamiren Tovsa"), for graphs whose entity
    count must grow with the number of statements."""
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < count:
        first = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
        last = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
        names.add(f"{first} {last}")
    return sorted(names, key=lambda _: rng.random())


def synthetic_statements(count: int, seed: int = 0,
                         names: list[str] | None = None) -> list[str]:
    """`count` distinct first-person and relation statements about named people; with
    `names`, statement i is about names[i] (so each one can bring a new person)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        person = names[len(out) % len(names)] if names else rng.choice(NAMES)
        text = rng.choice(TEMPLATES if not names else TEMPLATES[2:]).format(
            a=rng.choice(ACTIVITIES), k=rng.choice(KIN), n=person,
            m=rng.choice(NAMES), p=rng.choice(PLACES), o=rng.choice(ORGS),
            pet=rng.choice(PETS), pn=rng.choice(PET_NAMES), day=rng.choice(DAYS),
        )
        if text in seen:
            text = f"{text} (note {len(out)})"
        seen.add(text)
        out.append(text)
    return out


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    arr = np.asarray(seconds) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [" | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
