"""Is a new mention an entity we already know? Precision and recall of the resolver.

Each pair (existing entity, new mention, type) is labelled same/different by hand. The
resolver (`hybridmem.write.resolve.EntityResolver`, with the local MiniLM embedder for
name vectors) is given the first as a known entity and asked to resolve the second, as an
add does. Precision first: a wrong merge moves one person's facts onto another, so it must
stay 1.00 on every near-miss set (one-letter variants of made-up names, transliterations,
one first name with two surnames, nicknames, look-alike places and things).

Also printed: raw name-embedding similarity per threshold for common nouns (the only
mentions resolved by embedding alone), which chose GraphRules.resolution_threshold = 0.88.

Run: `python benchmarks/entity_resolution.py`.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402
from hybridmem.providers.embed.local import LocalEmbedder  # noqa: E402
from hybridmem.records import EntityRecord, pack_vector  # noqa: E402
from hybridmem.text import entity_key  # noqa: E402
from hybridmem.write.resolve import EntityResolver  # noqa: E402

# (known entity, new mention, type) that name the same thing
SAME = [
    ("hiking", "Hiking", "activity"), ("hiking", "hikes", "activity"),
    ("rock climbing", "rock-climbing", "activity"), ("New York", "New York City", "place"),
    ("badminton", "Badminton", "activity"), ("board games", "boardgames", "thing"),
    ("sushi", "Sushi", "thing"), ("the Louvre", "Louvre", "place"),
    ("salsa dancing", "salsa dance", "activity"), ("jazz", "jazz music", "thing"),
    ("photography", "photographing", "activity"), ("Google", "Google Inc", "organization"),
    ("kayaking", "kayak trips", "activity"), ("the gym", "gym", "place"),
    ("trail running", "trail runs", "activity"), ("coffee", "Coffee", "thing"),
    ("Bob Smith", "Bob", "person"), ("Maria Garcia", "maria garcia", "person"),
    ("NYC", "New York City", "place"), ("soccer", "football (soccer)", "activity"),
]
# (known entity, new mention, type) that must stay apart
DIFFERENT = {
    "things and places": [
        ("tennis", "table tennis", "activity"), ("Paris", "Paris, Texas", "place"),
        ("jazz", "blues", "thing"), ("hiking", "biking", "activity"), ("coffee", "tea", "thing"),
        ("Java", "JavaScript", "thing"), ("Berlin", "Bern", "place"),
        ("Austria", "Australia", "place"), ("pottery", "poetry", "activity"),
        ("salsa dancing", "tango dancing", "activity"), ("Apple", "apple pie", "thing"),
        ("the gym", "the pool", "place"), ("Google", "Microsoft", "organization"),
        ("chess", "checkers", "activity"), ("guitar", "bass guitar", "thing"),
        ("red wine", "white wine", "thing"), ("Lake Tahoe", "Lake Geneva", "place"),
    ],
    "one-letter variants": [
        (f"Zor{a}x", f"Zor{b}x", "person") for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ] + [
        (f"Vel{a}ra", f"Vel{b}ra", "place") for a, b in zip("aeiouy", "eiouya", strict=True)
    ] + [("Jon", "Jan", "person"), ("Kira", "Kara", "person"), ("Lena", "Lina", "person"),
         ("Marek", "Marik", "person"), ("Tomsk", "Tomsq", "place")],
    "transliterations": [
        ("Mohammed", "Muhammad", "person"), ("Aleksandr", "Alexander", "person"),
        ("Sergei", "Sergey", "person"), ("Yusuf", "Youssef", "person"),
        ("Tchaikovsky", "Chaikovsky", "person"), ("Beijing", "Peking", "place"),
    ],
    "same first name, other surname": [
        ("John Smith", "John Jones", "person"), ("Maria Garcia", "Maria Lopez", "person"),
        ("Anna Kowalska", "Anna Nowak", "person"), ("Li Wei", "Li Na", "person"),
    ],
    "nicknames": [
        ("Robert", "Bob", "person"), ("Elizabeth", "Liz", "person"),
        ("William", "Bill", "person"), ("Katherine", "Kate", "person"),
    ],
}
THRESHOLD = 0.88


def _resolves(embedder, known: str, mention: str, kind: str) -> bool:
    vectors = embedder.embed([known, mention])
    entity = EntityRecord(id=uuid.uuid4().hex, name=known, key=entity_key(known), type=kind,
                          created_at="2026-01-01T00:00:00.000000+00:00",
                          embedding=pack_vector(vectors[0]), user_id="u")
    resolver = EntityResolver([entity], THRESHOLD)
    found = resolver.lookup(mention, kind) or resolver.by_embedding(vectors[1], kind, mention)
    return found is not None and found.id == entity.id


def main() -> int:
    """Print the resolver's precision per near-miss set and its recall."""
    embedder = LocalEmbedder()
    merged_same = sum(_resolves(embedder, *pair) for pair in SAME)
    rows, false_merges = [], 0
    for name, pairs in DIFFERENT.items():
        wrong = [p for p in pairs if _resolves(embedder, *p)]
        false_merges += len(wrong)
        rows.append([name, str(len(pairs)), str(len(wrong)),
                     ", ".join(f"{a}/{b}" for a, b, _ in wrong) or "-"])
    print(f"resolver at threshold {THRESHOLD}: {len(SAME)} same-entity pairs, "
          f"{sum(len(p) for p in DIFFERENT.values())} different-entity pairs")
    print(table(["near-miss set", "pairs", "false merges", "which"], rows))
    precision = merged_same / (merged_same + false_merges) if merged_same + false_merges else 1.0
    print(f"precision {precision:.2f}, recall {merged_same / len(SAME):.2f} "
          f"({merged_same}/{len(SAME)} same-entity pairs merged)")

    common_same = [p for p in SAME if p[0].islower() and p[1].islower()]
    common_diff = [p for pairs in DIFFERENT.values() for p in pairs
                   if p[0].islower() and p[1].islower()]

    def sims(pairs):
        a = embedder.embed([p[0] for p in pairs])
        b = embedder.embed([p[1] for p in pairs])
        return (a * b).sum(axis=1)

    same, diff = sims(common_same), sims(common_diff)
    rows = []
    for threshold in (0.75, 0.80, 0.85, 0.88, 0.90, 0.92):
        tp, fp = int((same >= threshold).sum()), int((diff >= threshold).sum())
        rows.append([f"{threshold:.2f}", f"{tp / (tp + fp) if tp + fp else 1.0:.2f}",
                     f"{tp / len(same):.2f}", str(fp)])
    print(f"\nname-embedding similarity alone, common nouns ({len(common_same)} same, "
          f"{len(common_diff)} different pairs):")
    print(table(["threshold", "precision", "recall", "false merges"], rows))
    print(f"most similar different pair: {common_diff[int(np.argmax(diff))][:2]} at "
          f"{diff.max():.3f}")
    return 0 if false_merges == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
