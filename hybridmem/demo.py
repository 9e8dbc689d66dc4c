"""The main job: a short demo on the embedded default (offline).

Adds the article's seven statements for one user, then prints each query's ranked results
with their score components. Run with `python -m hybridmem.demo` or `hybridmem demo`.
"""

from __future__ import annotations

import argparse
import sys

from hybridmem.memory import Memory

STATEMENTS = [
    "I enjoy hiking",
    "I like badminton",
    "I dislike badminton",
    "My friend John has a dog named Tommy",
    "My name is Alice",
    "John and Harry both enjoy hiking",
    "My friend Peter is Spider-Man",
]
QUERIES = ["What is my name?", "Who is Spider-Man?", "Do I like badminton?", "Who has a dog?"]
DEMO_USER = "demo-alice"


def run(data_dir: str | None = None, out=sys.stdout) -> None:
    """Add the statements to a fresh demo scope and print ranked results."""
    config = {"data_dir": data_dir} if data_dir else None
    with Memory.from_config(config) as memory:
        memory.delete_all(user_id=DEMO_USER)  # the demo's own scope only
        print(f"hybridmem demo — data in {memory.data_dir}\n", file=out)
        for text in STATEMENTS:
            result = memory.add(text, user_id=DEMO_USER)
            added = ", ".join(
                f"{r['source']} -{r['relationship']}-> {r['target']}"
                for r in result["relations"]["added_entities"]
            )
            ended = ", ".join(
                f"{r['source']} -{r['relationship']}-> {r['target']}"
                for r in result["relations"]["deleted_entities"]
            )
            line = f"+ {text!r:42} graph: {added or '-'}"
            print(line + (f"   (ended: {ended})" if ended else ""), file=out)
        for query in QUERIES:
            print(f"\nQ: {query}", file=out)
            print(f"   {'score':>6}  {'type':8}  {'vector':>6} {'bm25':>6} {'graph':>6}  text",
                  file=out)
            for hit in memory.search(query, user_id=DEMO_USER, limit=3)["results"]:
                c = hit["score_components"]
                print(
                    f"   {hit['score']:6.3f}  {hit['type']:8}  {c['vector']['normalized']:6.2f} "
                    f"{c['bm25']['normalized']:6.2f} {c['graph']['normalized']:6.2f}  "
                    f"{hit['memory']}",
                    file=out,
                )
        graph = memory.graph(user_id=DEMO_USER)
        print(f"\nentity graph: {graph.number_of_nodes()} entities, "
              f"{graph.number_of_edges()} current relations", file=out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: `python -m hybridmem.demo [--data-dir DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="default: $HYBRIDMEM_HOME or ./hybridmem_data")
    args = parser.parse_args(argv)
    run(args.data_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
