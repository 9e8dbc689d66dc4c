"""Helpers shared by the benchmark scripts: percentiles, tables, synthetic statements."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

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


class Timed:
    """Wall and process-CPU seconds of a block (`with Timed() as t: ...; t.wall, t.cpu`).

    The CPU figure counts every thread of this process (onnxruntime's, Milvus Lite's
    server), so on a shared machine the ratio of two blocks' CPU seconds stays put where
    their wall-clock ratio swings with the other processes' load.
    """

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Timed:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


class BesideEmbedder:
    """Adds measured beside the embedder alone on the same texts, in the same run: the
    embedder's own throughput is the ceiling a bulk add can reach (issue 25's target:
    infer=False >= 85 % of it, infer=True with the rules extractor >= 70 %)."""

    def __init__(self) -> None:
        self.rows = 0
        self.last_add = 0.0  # wall seconds of the last measured add
        self.add = [0.0, 0.0]
        self.embed = [0.0, 0.0]

    def measure(self, add: Callable[[], object], embed: Callable[[], object],
                rows: int) -> None:
        """Run `add` (storing `rows` texts), then `embed` of the same texts alone."""
        with Timed() as a:
            add()
        with Timed() as e:
            embed()
        self.rows += rows
        self.last_add = a.wall
        self.add = [self.add[0] + a.wall, self.add[1] + a.cpu]
        self.embed = [self.embed[0] + e.wall, self.embed[1] + e.cpu]

    def summary(self) -> dict[str, float]:
        """memories/s, embedder texts/s, and the add/embedder ratios (wall and CPU)."""
        if not self.rows:
            return {}
        return {"add_per_s": self.rows / self.add[0], "embed_per_s": self.rows / self.embed[0],
                "wall_ratio": self.embed[0] / self.add[0],
                "cpu_ratio": self.embed[1] / self.add[1]}

    def line(self) -> str:
        """One printable line of `summary()`."""
        s = self.summary()
        if not s:
            return "no adds measured beside the embedder"
        return (f"{s['add_per_s']:.0f} memories/s beside the embedder's {s['embed_per_s']:.0f} "
                f"texts/s on the same {self.rows:,} texts: {s['wall_ratio']:.0%} of it by "
                f"wall clock, {s['cpu_ratio']:.0%} by process CPU time")
