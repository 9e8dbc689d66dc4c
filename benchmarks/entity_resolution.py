"""How similar must two entity names be to be one entity? Precision/recall per threshold.

Names of people never merge by embedding in hybridmem (only by key, alias or a unique
name part), so this measures the remaining case: things, places, activities. Each pair is
labelled same/different by hand; the local MiniLM embedder scores it. Precision first: the
default (GraphRules.resolution_threshold = 0.88) is the lowest threshold with precision 1.0
here (0.85) plus a margin over the most similar different pair ("Paris" / "Paris, Texas",
0.833).

Run: `python benchmarks/entity_resolution.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table  # noqa: E402
from hybridmem.providers.embed.local import LocalEmbedder  # noqa: E402

SAME = [
    ("hiking", "Hiking"), ("hiking", "hikes"), ("rock climbing", "rock-climbing"),
    ("New York", "New York City"), ("NYC", "New York City"), ("badminton", "Badminton"),
    ("board games", "boardgames"), ("sushi", "Sushi"), ("the Louvre", "Louvre"),
    ("salsa dancing", "salsa dance"), ("jazz", "jazz music"), ("photography", "photographing"),
    ("Google", "Google Inc"), ("soccer", "football (soccer)"), ("kayaking", "kayak trips"),
    ("the gym", "gym"), ("trail running", "trail runs"), ("coffee", "Coffee"),
]
DIFFERENT = [
    ("tennis", "table tennis"), ("Paris", "Paris, Texas"), ("jazz", "blues"),
    ("hiking", "biking"), ("coffee", "tea"), ("Java", "JavaScript"), ("cats", "dogs"),
    ("running", "swimming"), ("Berlin", "Bern"), ("Austria", "Australia"),
    ("pottery", "poetry"), ("salsa dancing", "tango dancing"), ("Apple", "apple pie"),
    ("the gym", "the pool"), ("sushi", "ramen"), ("Google", "Microsoft"),
    ("chess", "checkers"), ("guitar", "bass guitar"), ("red wine", "white wine"),
    ("Lake Tahoe", "Lake Geneva"),
]


def main() -> int:
    """Print precision and recall of embedding resolution at several thresholds."""
    embedder = LocalEmbedder()

    def sims(pairs):
        a = embedder.embed([p[0] for p in pairs])
        b = embedder.embed([p[1] for p in pairs])
        return (a * b).sum(axis=1)

    same, diff = sims(SAME), sims(DIFFERENT)
    rows = []
    for threshold in (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95):
        tp = int((same >= threshold).sum())
        fp = int((diff >= threshold).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        rows.append([f"{threshold:.2f}", f"{precision:.2f}", f"{tp / len(SAME):.2f}", str(fp)])
    print(f"{len(SAME)} same-entity pairs, {len(DIFFERENT)} different-entity pairs")
    print(table(["threshold", "precision", "recall", "false merges"], rows))
    worst = DIFFERENT[int(np.argmax(diff))]
    print(f"most similar different pair: {worst} at {diff.max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
