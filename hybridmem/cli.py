"""The `hybridmem` command: add, search, inspect, check, repair, export and import a store.

Options that pick the store (`--data-dir`, `--config`) and `--json` go before or after the
command, as with `git -C` (once: twice is a usage error). Commands other than add, import
and demo refuse a config that names no store rather than create an empty one. Exit codes:
0 ok, 1 not found (a memory, or the store), 2 bad usage, input or config, 3 store error
(locked, damaged, or `doctor` found a divergence), 4 provider error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hybridmem import __version__
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


# Piped output goes to programs, files and pagers, not to a terminal 80 columns wide (rich's
# guess when there is none): lines are as long as their content, unless COLUMNS says.
_PIPED_WIDTH = 1_000_000


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, soft_wrap=False, width=_PIPED_WIDTH if piped else None)


def _config(args: argparse.Namespace) -> Any:
    """The MemoryConfig that --config and --data-dir describe."""
    from hybridmem.config import MemoryConfig

    raw: dict[str, Any] = {}
    if args.config is not None:
        try:
            raw = json.loads(Path(args.config).read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {args.config}: {exc}") from None
    if args.data_dir is not None:
        raw["data_dir"] = str(args.data_dir)
    return MemoryConfig.from_dict(raw)


def _existing_store(config: Any) -> None:
    """Refuse a folder with no store: a mistyped --data-dir must not become an empty one."""
    from hybridmem.stores.identity import store_exists, store_paths

    paths = store_paths(config)
    if not store_exists(paths):
        raise NotFoundError(
            f"no store in {paths.data_dir} (no record {paths.catalog}): check "
            "--data-dir, $HYBRIDMEM_HOME or --config; `hybridmem add` starts one")


@contextmanager
def _memory(args: argparse.Namespace, *, repair: bool = False) -> Iterator[Any]:
    from hybridmem.memory import Memory

    config = _config(args)
    if args.needs_store:
        _existing_store(config)
    memory = Memory(config, repair=repair)
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
    if args.out is not None:  # a path that cannot be drawn to fails before the store opens
        from hybridmem.viz import check_target

        check_target(args.out)
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
         _history_detail(r)] for r in rows])


def _history_detail(row: dict[str, Any]) -> str:
    """Why it happened; for a row written before SUPERSEDE rows had a reason, by what."""
    detail = row.get("detail") or {}
    if detail.get("reason"):
        return detail["reason"]
    return f"superseded by {detail['superseded_by']}" if detail.get("superseded_by") else ""


def cmd_delete(args: argparse.Namespace) -> None:
    if (args.memory_id is None) == (not args.all):
        raise InvalidInputError("give a MEMORY_ID, or --all with --user/--agent/--run")
    with _memory(args) as memory:
        result = (memory.delete_all(**_scope(args)) if args.all
                  else memory.delete(args.memory_id))
    _print_json(result) if args.json else print(result["message"])


def cmd_export(args: argparse.Namespace) -> None:
    if args.out is not None and not args.out.parent.is_dir():  # before any work is done
        raise InvalidInputError(
            f"cannot write {args.out}: the folder {args.out.parent} does not exist")
    with _memory(args) as memory:
        lines = memory.export(**_scope(args), all_scopes=args.all)
        try:
            target = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
        except OSError as exc:
            raise InvalidInputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
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


def cmd_serve(args: argparse.Namespace) -> int:
    from hybridmem.server.run import ServeOptions, serve

    return serve(_config(args), ServeOptions(
        host=args.host, port=args.port, no_auth=args.no_auth, mcp=not args.no_mcp,
        max_pending_writes=args.max_pending_writes, max_body_mb=args.max_body_mb,
        body_timeout=args.body_timeout))


def cmd_mcp(args: argparse.Namespace) -> int:
    from hybridmem.server.stdio import run_stdio

    return run_stdio(_config(args), url=args.url, api_key=args.api_key, user_id=args.user)


@contextmanager
def _keyring(args: argparse.Namespace, *, create: bool) -> Iterator[Any]:
    """The store's keys. A store that is not open anywhere is opened (and made, for
    `create`) first, so its record has the current schema; one a server holds is
    reached through SQLite beside it."""
    from hybridmem.errors import StoreLockedError
    from hybridmem.memory import Memory
    from hybridmem.stores.identity import store_paths
    from hybridmem.stores.keys import KeyRing

    config = _config(args)
    record = store_paths(config).catalog
    if not record.exists() and not create:
        raise NotFoundError(f"no store at {record} (`hybridmem keys create` makes one)")
    with suppress(StoreLockedError):  # a running server holds it: its record is current
        Memory(config).close()
    ring = KeyRing(record)
    try:
        yield ring
    finally:
        ring.close()


def cmd_keys(args: argparse.Namespace) -> None:
    if args.keys_command == "create":
        if args.admin == bool(args.user or args.agent):
            raise InvalidInputError("give --user U, --agent A (or both), or --admin")
        with _keyring(args, create=True) as ring:
            info, secret = ring.create(user_id=args.user, agent_id=args.agent,
                                       admin=args.admin, note=args.note or "")
        if args.json:
            return _print_json({"id": info.id, "scope": info.describe(), "key": secret})
        print(f"key {info.id} ({info.describe()}); shown once, keep it:", file=sys.stderr)
        print(secret)
    elif args.keys_command == "list":
        with _keyring(args, create=False) as ring:
            keys = ring.list(include_revoked=args.all)
        if args.json:
            return _print_json([k.__dict__ for k in keys])
        _table("keys", ["id", "acts as", "note", "created", "revoked"], [
            [k.id, k.describe(), k.note, k.created_at[:19], (k.revoked_at or "")[:19]]
            for k in keys])
    else:
        with _keyring(args, create=False) as ring:
            info = ring.revoke(args.key_id)
        print(f"revoked key {info.id} ({info.describe()})")


def cmd_demo(args: argparse.Namespace) -> None:
    from hybridmem.demo import run

    run(str(args.data_dir) if args.data_dir else None)


# ---------------------------------------------------------------- parser


_AFTER = "_after"


class _UsageError(Exception):
    """A command line argparse refused (raised instead of printing and exiting, so that
    under --json it can be said as JSON)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        """Raise the usage error for `main` to report (argparse would print and exit)."""
        raise _UsageError(self, message)


class _Once(argparse.Action):
    """Store a value; the same option twice on one side of the command is a usage error
    (the last one would silently win)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice")
        setattr(namespace, self.dest, values)


def _merge_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Store options given after the command join those given before it; one given on
    both sides is a usage error."""
    for name, flag in (("data_dir", "--data-dir"), ("config", "--config")):
        late = vars(args).pop(name + _AFTER, None)
        if late is not None:
            if getattr(args, name) is not None:
                parser.error(f"{flag} given twice (before and after the command)")
            setattr(args, name, late)
    args.json = args.json or vars(args).pop("json" + _AFTER, False)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (global options accepted before or after the command)."""
    def store_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
        # A command parses its options into a namespace of its own that then overwrites
        # the top level's: its copies keep their own names (`_after`), so `_merge_options`
        # can tell a value given on both sides of the command from one given once.
        default, after = (None, "") if top else (argparse.SUPPRESS, _AFTER)
        parser.add_argument("--data-dir", type=Path, default=default, action=_Once,
                            dest="data_dir" + after, metavar="DIR",
                            help="store directory (default: $HYBRIDMEM_HOME or "
                                 "./hybridmem_data)")
        parser.add_argument("--config", type=Path, default=default, action=_Once,
                            dest="config" + after, metavar="FILE",
                            help="JSON config file (mem0's dict shape)")
        parser.add_argument("--json", action="store_true", default=False if top else
                            argparse.SUPPRESS, dest="json" + after,
                            help="print JSON instead of tables; an error is then a JSON "
                                 'object {"error": {...}} on stdout')

    root = _Parser(
        prog="hybridmem", description="Memory for agents (Milvus + Kuzu), from the terminal.",
        epilog="exit codes: 0 ok, 1 not found, 2 usage/input/config, 3 store, 4 provider")
    store_options(root, top=True)
    root.add_argument("--version", action="version", version=f"hybridmem {__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, fn: Callable, help_text: str, *, scoped: bool = False,
                needs_store: bool = True):
        """A subcommand; `needs_store=False` for those that may start a store (add, import,
        demo): the others refuse a config that names no store."""
        parser = commands.add_parser(name, help=help_text, description=help_text)
        store_options(parser, top=False)
        if scoped:
            parser.add_argument("--user", "-u", help="user_id scope")
            parser.add_argument("--agent", help="agent_id scope")
            parser.add_argument("--run", help="run_id scope")
        parser.set_defaults(handler=fn, needs_store=needs_store)
        return parser

    p = command("add", cmd_add, "Remember messages (user role).", scoped=True,
                needs_store=False)
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
    p = command("export", cmd_export, "Write a scope (or --all) as JSON Lines (one JSON "
                "object per line, with or without --json); `import` reads it back.",
                scoped=True)
    p.add_argument("--all", action="store_true", help="every scope")
    p.add_argument("--out", type=Path, help="the .jsonl file to write (default: stdout)")
    p = command("import", cmd_import, "Load a file made by `export` (ids kept).",
                needs_store=False)
    p.add_argument("source", type=Path)
    command("stats", cmd_stats, "Row counts in the record and each engine.")
    command("doctor", cmd_doctor, "Compare Milvus and Kuzu with the record (full scan).")
    command("repair", cmd_repair, "Make Milvus and Kuzu match the record; rebuild a lost or "
            "damaged catalog from them (damaged files are moved aside, never deleted).")
    p = command("pending", cmd_pending, "Journaled operations not finished yet.")
    p.add_argument("--retry", action="store_true", help="replay them now")
    p.add_argument("--discard", metavar="ID", help="drop one (e.g. a quarantined add)")
    command("demo", cmd_demo, "The offline demo: the article's statements and questions.",
            needs_store=False)
    p = command("serve", cmd_serve, "Serve the store to many agents: REST in mem0's shapes, "
                "MCP at /mcp, keys bound to scopes (foreground; Ctrl-C stops it).",
                needs_store=False)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free)")
    p.add_argument("--no-auth", action="store_true",
                   help="ask no key (loopback hosts only; every caller acts as admin)")
    p.add_argument("--no-mcp", action="store_true", help="serve REST only")
    p.add_argument("--max-pending-writes", type=int, default=64,
                   help="writes running or waiting at most; more get 503 (default 64)")
    p.add_argument("--max-body-mb", type=float, default=8.0,
                   help="largest request body in MiB (default 8)")
    p.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds a client may take to send a request body (default 30)")
    p = command("mcp", cmd_mcp, "The MCP tools on stdio, for clients that launch a server "
                "(Claude Desktop, Cursor): forwards to `hybridmem serve` with --url, else "
                "opens the store itself.", needs_store=False)
    p.add_argument("--url", help="a running `hybridmem serve` (default: $HYBRIDMEM_URL)")
    p.add_argument("--api-key", help="its key (default: $HYBRIDMEM_API_KEY)")
    p.add_argument("--user", "-u", help="the user_id of tool calls that name none")
    p = command("keys", cmd_keys, "The server's API keys: create, list, revoke.",
                needs_store=False)  # `keys create` may start one; the others check
    keys = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    k = keys.add_parser("create", help="make a key (printed once, alone on the last line)")
    k.add_argument("--user", "-u", help="bind the key to this user_id")
    k.add_argument("--agent", help="bind the key to this agent_id")
    k.add_argument("--admin", action="store_true", help="a key that may act in any scope")
    k.add_argument("--note", help="what the key is for")
    k = keys.add_parser("list", help="the keys (never their secrets)")
    k.add_argument("--all", action="store_true", help="revoked keys too")
    k = keys.add_parser("revoke", help="revoke a key by its id")
    k.add_argument("key_id")
    for sub in keys.choices.values():
        store_options(sub, top=False)
    return root


# Each error family's exit code and the word its one-line message starts with; the first
# match wins, so a subclass comes before its base.
_EXITS: list[tuple[type[HybridMemError], int, str]] = [
    (NotFoundError, EXIT_NOT_FOUND, "not found"),
    (InvalidInputError, EXIT_USAGE, "error"),
    (ConfigError, EXIT_USAGE, "error"),
    (StoreError, EXIT_STORE, "store error"),
    (ProviderError, EXIT_PROVIDER, "provider error"),
    (HybridMemError, EXIT_USAGE, "error"),
]


def _report(exc: HybridMemError, *, as_json: bool) -> int:
    """Say what failed, in one line on stderr or (with --json) as a JSON object on stdout
    where the output was expected; returns the exit code."""
    code, prefix = next((c, p) for kind, c, p in _EXITS if isinstance(exc, kind))
    message = str(exc)
    if isinstance(exc, ScopeError):  # the user typed flags, not keyword arguments
        for field, flag in _FLAGS.items():
            message = message.replace(field, flag)
    if not as_json:
        print(f"{prefix}: {message}", file=sys.stderr)
        return code
    error: dict[str, Any] = {"type": type(exc).__name__, "message": message,
                             "exit_code": code}
    if isinstance(exc, ProviderError):
        error.update(provider=exc.provider, failure=exc.failure)
    _print_json({"error": error})
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hybridmem` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _merge_options(parser, args)
    except _UsageError as exc:
        if "--json" in argv:  # the parse failed, so only the raw words can tell
            _print_json({"error": {"type": "UsageError", "message": exc.message,
                                   "usage": exc.parser.format_usage().strip(),
                                   "exit_code": EXIT_USAGE}})
        else:
            exc.parser.print_usage(sys.stderr)
            print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    try:
        code = args.handler(args)
    except HybridMemError as exc:
        return _report(exc, as_json=args.json)
    except KeyboardInterrupt:
        return 130
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
