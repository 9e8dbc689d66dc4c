"""Writes explore_graph.ipynb (outputs are made by running it: `jupyter execute
notebooks/explore_graph.ipynb --output=explore_graph-run` writes them to
notebooks/explore_graph-run.ipynb; tests/test_notebook.py runs that command).

Kept as code so the notebook's cells are reviewed like code: `python notebooks/build_notebook.py`.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("""# Exploring a user's entity graph with hybridmem

Everything here runs offline on the embedded default: Milvus Lite for facts, Kuzu for the
entity graph, the local MiniLM embedder and the rules extractor. We build a small memory
for two users, look at ranked search results with their score components, draw a user's
graph, and follow a conflict through its history."""),
    new_code_cell("""import os
import tempfile

import pandas as pd

from hybridmem import Memory

# A throwaway store unless HYBRIDMEM_HOME points somewhere: the last cell removes it
# (and, should the run stop before, the kernel does when it exits).
scratch = None if os.environ.get("HYBRIDMEM_HOME") else tempfile.TemporaryDirectory(
    prefix="hybridmem-nb-")
data_dir = os.environ.get("HYBRIDMEM_HOME") or scratch.name
memory = Memory.from_config({"data_dir": data_dir})
print("store:", memory.data_dir)"""),
    new_markdown_cell("## Two users, two walls\nAlice tells the article's seven statements; "
                      "Bob tells a few of his own. Each `add` returns what the graph learned."),
    new_code_cell("""alice = [
    "I enjoy hiking",
    "I like badminton",
    "I dislike badminton",
    "My friend John has a dog named Tommy",
    "My name is Alice",
    "John and Harry both enjoy hiking",
    "My friend Peter is Spider-Man",
]
bob = ["My name is Bob", "I live in Oslo", "My sister Ana works at Acme", "I love jazz"]
for user, statements in (("alice", alice), ("bob", bob)):
    memory.delete_all(user_id=user)
    for text in statements:
        result = memory.add(text, user_id=user)
        learned = [f"{r['source']} -{r['relationship']}-> {r['target']}"
                   for r in result["relations"]["added_entities"]]
        ended = [f"{r['source']} -{r['relationship']}-> {r['target']}"
                 for r in result["relations"]["deleted_entities"]]
        print(f"{user:5} + {text!r:42} {learned}" + (f"  ended {ended}" if ended else ""))"""),
    new_markdown_cell("## One ranked list, explained\nMemories and relations compete on one "
                      "fused score; each hit carries its `vector`, `bm25` and `graph` "
                      "components (raw and normalised) and its provenance."),
    new_code_cell("""def ranked(query, user, limit=5):
    rows = []
    for hit in memory.search(query, user_id=user, limit=limit)["results"]:
        c = hit["score_components"]
        rows.append({"score": hit["score"], "type": hit["type"], "text": hit["memory"],
                     "vector": c["vector"]["normalized"], "bm25": c["bm25"]["normalized"],
                     "graph": c["graph"]["normalized"],
                     "memory ids": len(hit["provenance"]["memory_ids"])})
    return pd.DataFrame(rows)

ranked("What is my name?", "alice")"""),
    new_code_cell('ranked("Who is Spider-Man?", "alice")'),
    new_code_cell('ranked("Do I like badminton?", "alice")'),
    new_markdown_cell("## Alice's graph\nColours by entity type; set `SHOW_INVALID` to see "
                      "ended relations as dashed edges."),
    new_code_cell("""from hybridmem.viz import draw

SHOW_INVALID = True
graph = memory.graph(user_id="alice", include_invalid=SHOW_INVALID)
print(graph.number_of_nodes(), "entities,", graph.number_of_edges(), "relations")
draw(graph, show_invalid=SHOW_INVALID);"""),
    new_markdown_cell("## A conflict and its history\n\"I dislike badminton\" ended \"likes "
                      "badminton\": the edge is kept as history with its reason, and the "
                      "memory behind it is superseded (out of search, still in `history`)."),
    new_code_cell("""everything = memory.get_all(user_id="alice", include_invalid=True)
relations = pd.DataFrame(everything["relations"])
relations[["source", "relationship", "target", "valid", "reason"]]"""),
    new_code_cell("""stale = relations[~relations["valid"]].iloc[0]
history = pd.DataFrame(memory.history(stale["memory_ids"][0]))
history[["event", "old_memory", "new_memory", "created_at"]]"""),
    new_markdown_cell("## Bob's graph is his own"),
    new_code_cell("""bob_graph = memory.graph(user_id="bob")
assert not set(bob_graph.nodes) & set(memory.graph(user_id="alice").nodes)
draw(bob_graph);"""),
    new_markdown_cell("## Interactive view\nIf `pyvis` is installed, write an HTML page you "
                      "can pan and zoom."),
    new_code_cell("""try:
    from pyvis.network import Network
except ImportError:
    print("pyvis is not installed: pip install pyvis for an interactive HTML view")
else:
    net = Network(directed=True, height="500px", cdn_resources="in_line")
    for node, data in graph.nodes(data=True):
        net.add_node(node, label=data["name"], title=data["type"])
    for source, target, data in graph.edges(data=True):
        net.add_edge(source, target, label=data["relation"], dashes=not data["valid"])
    html_path = "alice_graph.html"  # beside the notebook: the store may be a throwaway
    net.write_html(html_path)
    print("wrote", html_path)"""),
    new_markdown_cell("""## A live store, through the server
A running agent holds its store (one process per store), so a notebook beside it explores
it through `hybridmem serve` with `MemoryClient`, which has `Memory`'s methods. With
`HYBRIDMEM_URL` (and `HYBRIDMEM_API_KEY`) set, this uses that server; otherwise it starts
one on a throwaway store. A second process, the "agent", then tells it about Dana while
we watch her graph grow."""),
    new_code_cell("""import subprocess
import sys
import textwrap
import time

from hybridmem import MemoryClient

url, key = os.environ.get("HYBRIDMEM_URL"), os.environ.get("HYBRIDMEM_API_KEY")
served = served_dir = None
if url is None:  # no server given: start one beside the notebook, on its own store
    served_dir = tempfile.TemporaryDirectory(prefix="hybridmem-nb-")
    served = subprocess.Popen(
        [sys.executable, "-m", "hybridmem.cli", "serve", "--no-auth", "--port", "0",
         "--data-dir", served_dir.name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    for line in served.stdout:
        if line.startswith("hybridmem serving"):
            url = line.split(" at ")[1].split()[0]
            break
live = MemoryClient(host=url, api_key=key)
live.delete_all(user_id="dana")
print("live store at", url)"""),
    new_code_cell("""agent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f\"\"\"
    import time
    from hybridmem import MemoryClient
    with MemoryClient(host={url!r}, api_key={key!r}) as memory:
        for text in ["My name is Dana", "I live in Utrecht",
                     "I have a golden retriever called Biscuit",
                     "My brother Oskar plays the cello", "My friend Lea works at Acme"]:
            memory.add(text, user_id="dana")
            time.sleep(0.5)
\"\"\")])
seen = -1
while True:  # the agent writes; the notebook reads the same store, live
    finished = agent.poll() is not None
    now = live.graph(user_id="dana")
    if now.number_of_edges() != seen:
        seen = now.number_of_edges()
        print(f"{now.number_of_nodes()} entities, {seen} relations")
    if finished:
        break
    time.sleep(0.2)
print("the agent exited with", agent.returncode)"""),
    new_code_cell("""hits = live.search("Who is my brother?", user_id="dana", limit=3)["results"]
pd.DataFrame([{"score": h["score"], "type": h["type"], "text": h["memory"]} for h in hits])"""),
    new_code_cell("draw(live.graph(user_id=\"dana\"));"),
    new_code_cell("""memory.close()
if scratch is not None:
    scratch.cleanup()
live.close()
if served is not None:  # the server this notebook started: stopped, its store removed
    served.terminate()
    served.wait(timeout=60)
    served_dir.cleanup()"""),
]

# Ids by position, so regenerating an unchanged notebook changes nothing in git.
for number, cell in enumerate(cells):
    cell["id"] = f"cell-{number:02d}"
notebook = new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
})
nbformat.write(notebook, Path(__file__).with_name("explore_graph.ipynb"))
