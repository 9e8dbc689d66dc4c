"""The `hybridmem` command: add, search, inspect, check, repair, export and import a store.

Options that pick the store (`--data-dir`, `--config`) and `--json` go before or after the
command, as with `git -C`. Exit codes: 0 ok, 1 not found, 2 bad usage, input or config,
3 store error (locked, damaged, or `doctor` found a divergence), 4 provider error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hybridmem.errors import (
    ConfigError,
    HybridMemError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
    ScopeError,
    StoreError,
)

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_STORE, EXIT_PROVIDER = 1, 2, 3, 4
_FLAGS = {"user_id": "--user", "agent_id": "--agent", "run_id": "--run"}


# ---------------------------------------------------------------- plumbing


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=False)


@contextmanager
def _memory(args: argparse.Namespace, *, repair: bool = False) -> Iterator[Any]:
    from hybridmem.config import MemoryConfig
    from hybridmem.memory import Memory

    raw: dict[str, Any] = {}
    if args.config is not None:
        try:
            raw = json.loads(Path(args.config).read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {args.config}: {exc}") from None
    if args.data_dir is not None:
        raw["data_dir"] = str(args.data_dir)
    memory = Memory(MemoryConfig.from_dict(raw), repair=repair)
    try:
        yield memory
    finally:
        memory.close()


def _scope(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in (("user_id", args.user), ("agent_id", args.agent),
                              ("run_id", args.run)) if v is not None}


def _json_arg(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{flag} is not valid JSON: {exc}") from None


def _table(title: str, columns: list[str], rows: list[list[str]], *,
           keep: tuple[str, ...] = ()) -> None:
    """A table whose `keep` columns (ids) are never cut, so they stay copyable."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column in keep, min_width=36 if column in keep else None,
                         overflow="fold")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


# ---------------------------------------------------------------- commands


def cmd_add(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        result = memory.add(list(args.text), **_scope(args),
                            metadata=_json_arg(args.metadata, "--metadata"),
                            infer=not args.no_infer)
    if args.json:
        return _print_json(result)
    for item in result["results"]:
        print(f"{item['event']} {item['id']}  {item['memory']}")
    for rel in result["relations"]["added_entities"]:
        print(f"  + {rel['source']} -{rel['relationship']}-> {rel['target']}")
    for rel in result["relations"]["deleted_entities"]:
        print(f"  - {rel['source']} -{rel['relationship']}-> {rel['target']}  ({rel['reason']})")


def cmd_search(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        result = memory.search(args.query, **_scope(args), limit=args.limit,
                               filters=_json_arg(args.filters, "--filters"),
                               threshold=args.threshold)
    if args.json:
        return _print_json(result)
    rows = []
    for rank, hit in enumerate(result["results"], start=1):
        c = hit["score_components"]
        rows.append([str(rank), f"{hit['score']:.3f}", hit["type"],
                     f"{c['vector']['normalized']:.2f}", f"{c['bm25']['normalized']:.2f}",
                     f"{c['graph']['normalized']:.2f}", hit["memory"]])
    _table(f"search: {args.query}", ["#", "score", "type", "vector", "bm25", "graph", "text"],
           rows)


def cmd_get_all(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        result = memory.get_all(**_scope(args), limit=args.limit,
                                include_invalid=args.include_invalid)
    if args.json:
        return _print_json(result)
    _table("memories", ["id", "created_at", "memory"], [
        [item["id"], item["created_at"][:19],
         item["memory"] + (" (superseded)" if item.get("superseded_at") else "")]
        for item in result["results"]], keep=("id",))
    _table("relations", ["source", "relationship", "target", "state"], [
        [r["source"], r["relationship"], r["target"],
         "current" if r["valid"] else f"ended: {r['reason']}"]
        for r in result["relations"]])


def cmd_get(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        item = memory.get(args.memory_id)
    if item is None:
        raise NotFoundError(f"no memory with id {args.memory_id!r}")
    if args.json:
        return _print_json(item)
    print(f"{item['id']}  {item['memory']}")


def cmd_graph(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        g = memory.graph(**_scope(args), include_invalid=args.include_invalid)
    if args.json:
        import networkx as nx

        _print_json(nx.node_link_data(g, edges="edges"))
    else:
        from rich.tree import Tree

        tree = Tree(f"{len(g)} entities, {g.number_of_edges()} relations")
        for node, data in sorted(g.nodes(data=True), key=lambda nd: -g.out_degree(nd[0])):
            if not g.out_degree(node):
                continue
            branch = tree.add(f"[bold]{data['name']}[/] [dim]({data['type']})[/]")
            for _, target, edge in g.out_edges(node, data=True):
                text = f"{edge['relation']} -> {g.nodes[target]['name']}"
                branch.add(text if edge["valid"] else f"[strike dim]{text}[/]  "
                                                      f"[dim]{edge['reason']}[/]")
        _console().print(tree)
    if args.out is not None:
        from hybridmem.viz import draw

        draw(g, args.out)
        print(f"wrote {args.out}", file=sys.stderr)


def cmd_history(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        rows = memory.history(args.memory_id)
    if not rows:
        raise NotFoundError(f"no history for memory {args.memory_id!r}")
    if args.json:
        return _print_json(rows)
    _table(f"history of {args.memory_id}", ["when", "event", "old", "new", "detail"], [
        [r["created_at"][:19], r["event"], r["old_memory"] or "", r["new_memory"] or "",
         (r.get("detail") or {}).get("reason", "")] for r in rows])


def cmd_delete(args: argparse.Namespace) -> None:
    if (args.memory_id is None) == (not args.all):
        raise InvalidInputError("give a MEMORY_ID, or --all with --user/--agent/--run")
    with _memory(args) as memory:
        result = (memory.delete_all(**_scope(args)) if args.all
                  else memory.delete(args.memory_id))
    _print_json(result) if args.json else print(result["message"])


def cmd_export(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        lines = memory.export(**_scope(args), all_scopes=args.all)
        target = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
        count = 0
        try:
            for line in lines:
                target.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
        finally:
            if args.out:
                target.close()
    if args.out:
        print(f"wrote {count} lines to {args.out}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> None:
    from rich.progress import Progress

    try:
        raw = args.source.read_text(encoding="utf-8").splitlines()
        lines = [json.loads(line) for line in raw if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read {args.source}: {exc}") from None
    total = sum(1 for line in lines if isinstance(line, dict) and line.get("kind") != "header")
    with _memory(args) as memory, Progress(console=_console(stderr=True),
                                           disable=args.json) as progress:
        task = progress.add_task("importing", total=total)
        counts = memory.import_lines(lines, progress=lambda n: progress.advance(task, n))
    _print_json(counts) if args.json else print(
        f"imported {counts['memories']} memories, {counts['entities']} entities, "
        f"{counts['relations']} relations")


def cmd_stats(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        _print_json({**memory.stats(), "store": str(memory.data_dir)})


def cmd_doctor(args: argparse.Namespace) -> int:
    with _memory(args) as memory:
        report = {"opened": memory.recovered, **memory.check()}
    if args.json:
        _print_json(report)
    else:
        for note in report["notes"]:
            print(note)
        print("the engines match the record" if report["clean"]
              else "run `hybridmem repair` to make the engines match the record")
        if report["pending"]:
            print(f"{report['pending']} journaled operations are pending "
                  "(`hybridmem pending`)")
    return 0 if report["clean"] else EXIT_STORE


# What an open reports of replaying the journal, as opposed to repairing the engines.
_REPLAY_KEYS = ("finished", "pending", "repeated_dropped")


def cmd_repair(args: argparse.Namespace) -> int:
    # Opening with repair=True is the repair (damaged files moved aside, a lost record
    # rebuilt, then only what differs written); a second pass would find nothing.
    with _memory(args, repair=True) as memory:
        done = dict(memory.recovered)
        after = memory.check()
    replayed = {k: done.pop(k) for k in _REPLAY_KEYS if k in done}
    report = {"repaired": done, "replayed": replayed, "clean": after["clean"],
              "found": after["found"], "pending": after["pending"]}
    if args.json:
        _print_json(report)
    else:
        print("repaired: " + (", ".join(f"{k} {v}" for k, v in done.items() if v)
                              or "nothing needed repair"))
        if replayed.get("finished"):
            print(f"finished {replayed['finished']} journaled operations")
        print("the engines match the record" if report["clean"]
              else f"still different: {report['found']}")
        if report["pending"]:
            print(f"{report['pending']} journaled operations are pending (`hybridmem pending`)")
    return 0 if report["clean"] else EXIT_STORE


def cmd_pending(args: argparse.Namespace) -> None:
    with _memory(args) as memory:
        if args.discard:
            memory.discard_pending(args.discard)
        if args.retry:
            print(json.dumps(memory.retry_pending()), file=sys.stderr)
        ops = memory.pending()
    if args.json or not ops:
        return _print_json(ops) if args.json else print("no pending operations")
    _table("pending operations", ["id", "kind", "status", "attempts", "error"],
           [[o["id"], o["kind"], o["status"], str(o["attempts"]), o["error"] or ""]
            for o in ops], keep=("id",))


def cmd_demo(args: argparse.Namespace) -> None:
    from hybridmem.demo import run

    run(str(args.data_dir) if args.data_dir else None)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (global options accepted before or after the command)."""
    def store_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
        default = None if top else argparse.SUPPRESS
        parser.add_argument("--data-dir", type=Path, default=default,
                            help="store directory (default: $HYBRIDMEM_HOME or "
                                 "./hybridmem_data)")
        parser.add_argument("--config", type=Path, default=default,
                            help="JSON config file (mem0's dict shape)")
        parser.add_argument("--json", action="store_true", default=False if top else
                            argparse.SUPPRESS, help="print JSON instead of tables")

    root = argparse.ArgumentParser(
        prog="hybridmem", description="Memory for agents (Milvus + Kuzu), from the terminal.",
        epilog="exit codes: 0 ok, 1 not found, 2 usage/input/config, 3 store, 4 provider")
    store_options(root, top=True)
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, fn: Callable, help_text: str, *, scoped: bool = False):
        parser = commands.add_parser(name, help=help_text, description=help_text)
        store_options(parser, top=False)
        if scoped:
            parser.add_argument("--user", "-u", help="user_id scope")
            parser.add_argument("--agent", help="agent_id scope")
            parser.add_argument("--run", help="run_id scope")
        parser.set_defaults(handler=fn)
        return parser

    p = command("add", cmd_add, "Remember messages (user role).", scoped=True)
    p.add_argument("text", nargs="+", help="one or more messages")
    p.add_argument("--metadata", help="metadata as JSON")
    p.add_argument("--no-infer", action="store_true",
                   help="store the messages verbatim (no fact or relation extraction)")
    p = command("search", cmd_search, "One ranked list of memories and relations.",
                scoped=True)
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--filters", help="metadata filters as JSON (mem0's grammar)")
    p.add_argument("--threshold", type=float, help="minimum fused score (0-1)")
    p = command("get-all", cmd_get_all, "A scope's memories and relations.", scoped=True)
    p.add_argument("--limit", type=int, default=100, help="number of memories (default 100)")
    p.add_argument("--include-invalid", action="store_true",
                   help="also superseded memories and ended relations")
    p = command("get", cmd_get, "One memory by id.")
    p.add_argument("memory_id")
    p = command("graph", cmd_graph, "The entity graph as a tree, optionally drawn.",
                scoped=True)
    p.add_argument("--include-invalid", action="store_true", help="also ended relations")
    p.add_argument("--out", type=Path, help="write a picture (.png or .svg; needs [viz])")
    p = command("history", cmd_history, "What happened to one memory.")
    p.add_argument("memory_id")
    p = command("delete", cmd_delete, "Erase one memory, or --all of a scope.", scoped=True)
    p.add_argument("memory_id", nargs="?")
    p.add_argument("--all", action="store_true", help="erase the whole scope")
    p = command("export", cmd_export, "Write a scope (or --all) as JSON lines.", scoped=True)
    p.add_argument("--all", action="store_true", help="every scope")
    p.add_argument("--out", type=Path, help="file (default: stdout)")
    p = command("import", cmd_import, "Load a file made by `export` (ids kept).")
    p.add_argument("source", type=Path)
    command("stats", cmd_stats, "Row counts in the record and each engine.")
    command("doctor", cmd_doctor, "Compare Milvus and Kuzu with the record (full scan).")
    command("repair", cmd_repair, "Make Milvus and Kuzu match the record; rebuild a lost or "
            "damaged catalog from them (damaged files are moved aside, never deleted).")
    p = command("pending", cmd_pending, "Journaled operations not finished yet.")
    p.add_argument("--retry", action="store_true", help="replay them now")
    p.add_argument("--discard", metavar="ID", help="drop one (e.g. a quarantined add)")
    command("demo", cmd_demo, "The offline demo: the article's statements and questions.")
    return root


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hybridmem` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (usage line printed, 2) or --help (0)
        return int(exc.code or 0)
    try:
        code = args.handler(args)
    except NotFoundError as exc:
        print(f"not found: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except ScopeError as exc:
        message = str(exc)
        for field, flag in _FLAGS.items():
            message = message.replace(field, flag)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except (InvalidInputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"store error: {exc}", file=sys.stderr)
        return EXIT_STORE
    except ProviderError as exc:
        print(f"provider error: {exc}", file=sys.stderr)
        return EXIT_PROVIDER
    except HybridMemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
