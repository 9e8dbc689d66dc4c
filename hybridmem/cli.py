"""The `hybridmem` command: add, search, inspect, export and import a memory store.

Every command takes `--data-dir` (default `$HYBRIDMEM_HOME` or `./hybridmem_data`) or
`--config FILE` (a JSON mem0-style config dict), scope options `--user/--agent/--run`, and
`--json` for machine-readable output. Exit codes: 0 ok, 1 not found, 2 bad input or config,
3 store error (e.g. locked), 4 provider error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.tree import Tree

from hybridmem.errors import (
    ConfigError,
    HybridMemError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
    StoreError,
)
from hybridmem.memory import Memory

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="hybridmem: memory for agents (Milvus + Kuzu), from the terminal.")
out = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Store directory.",
                                               envvar="HYBRIDMEM_HOME")]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="JSON config (mem0 shape).")]
User = Annotated[str | None, typer.Option("--user", "-u", help="user_id scope.")]
Agent = Annotated[str | None, typer.Option("--agent", help="agent_id scope.")]
Run = Annotated[str | None, typer.Option("--run", help="run_id scope.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@contextlib.contextmanager
def _memory(data_dir: Path | None, config: Path | None) -> Iterator[Memory]:
    try:
        raw: dict[str, Any] = json.loads(config.read_text()) if config else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config {config}: {exc}") from None
    if data_dir is not None:
        raw["data_dir"] = str(data_dir)
    memory = Memory.from_config(raw)
    try:
        yield memory
    finally:
        memory.close()


def _scope(user: str | None, agent: str | None, run: str | None) -> dict[str, str]:
    return {k: v for k, v in (("user_id", user), ("agent_id", agent), ("run_id", run)) if v}


def _json_arg(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {exc}") from None


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


@app.command()
def add(
    text: Annotated[list[str], typer.Argument(help="One or more messages (user role).")],
    user: User = None, agent: Agent = None, run: Run = None,
    metadata: Annotated[str | None, typer.Option(help="Metadata as JSON.")] = None,
    infer: Annotated[bool, typer.Option("--infer/--no-infer",
                                        help="Extract facts and relations.")] = True,
    data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Remember messages."""
    with _memory(data_dir, config) as memory:
        result = memory.add(list(text), **_scope(user, agent, run),
                            metadata=_json_arg(metadata, "--metadata"), infer=infer)
    if as_json:
        _print_json(result)
        return
    for item in result["results"]:
        out.print(f"[bold]{item['event']}[/] {item['id']}  {item['memory']}")
    for rel in result["relations"]["added_entities"]:
        out.print(f"  [green]+[/] {rel['source']} -{rel['relationship']}-> {rel['target']}")
    for rel in result["relations"]["deleted_entities"]:
        out.print(f"  [red]-[/] {rel['source']} -{rel['relationship']}-> {rel['target']}"
                  f"  ({rel['reason']})")


@app.command()
def search(
    query: str, user: User = None, agent: Agent = None, run: Run = None,
    limit: Annotated[int, typer.Option(help="Number of results.")] = 10,
    filters: Annotated[str | None, typer.Option(help="Metadata filters as JSON.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Minimum fused score.")] = None,
    data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """One ranked list of memories and relations, with each score's components."""
    with _memory(data_dir, config) as memory:
        result = memory.search(query, **_scope(user, agent, run), limit=limit,
                               filters=_json_arg(filters, "--filters"), threshold=threshold)
    if as_json:
        _print_json(result)
        return
    table = Table(title=f"search: {query}")
    for column in ("#", "score", "type", "vector", "bm25", "graph", "text"):
        table.add_column(column, justify="right" if column not in ("type", "text") else "left")
    for rank, hit in enumerate(result["results"], start=1):
        c = hit["score_components"]
        table.add_row(str(rank), f"{hit['score']:.3f}", hit["type"],
                      f"{c['vector']['normalized']:.2f}", f"{c['bm25']['normalized']:.2f}",
                      f"{c['graph']['normalized']:.2f}", hit["memory"])
    out.print(table)


@app.command("get-all")
def get_all(
    user: User = None, agent: Agent = None, run: Run = None,
    limit: Annotated[int, typer.Option(help="Number of memories.")] = 100,
    include_invalid: Annotated[bool, typer.Option(help="Show superseded/ended too.")] = False,
    data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """A scope's memories and relations."""
    with _memory(data_dir, config) as memory:
        result = memory.get_all(**_scope(user, agent, run), limit=limit,
                                include_invalid=include_invalid)
    if as_json:
        _print_json(result)
        return
    table = Table(title="memories")
    for column in ("id", "created_at", "memory"):
        table.add_column(column)
    for item in result["results"]:
        text = item["memory"] + (" [dim](superseded)[/]" if item.get("superseded_at") else "")
        table.add_row(item["id"], item["created_at"][:19], text)
    out.print(table)
    _print_relations(result["relations"])


def _print_relations(relations: list[dict[str, Any]]) -> None:
    table = Table(title="relations")
    for column in ("source", "relationship", "target", "state"):
        table.add_column(column)
    for rel in relations:
        state = "current" if rel["valid"] else f"ended: {rel['reason']}"
        table.add_row(rel["source"], rel["relationship"], rel["target"], state)
    out.print(table)


@app.command()
def graph(
    user: User = None, agent: Agent = None, run: Run = None,
    include_invalid: Annotated[bool, typer.Option(help="Show ended relations too.")] = False,
    picture: Annotated[Path | None, typer.Option("--out",
                                                 help="Write a picture (.png/.svg).")] = None,
    data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """The entity graph as a tree (entity -> its relations), optionally drawn to a file."""
    with _memory(data_dir, config) as memory:
        g = memory.graph(**_scope(user, agent, run), include_invalid=include_invalid)
    if as_json:
        import networkx as nx

        _print_json(nx.node_link_data(g, edges="edges"))
    else:
        tree = Tree(f"[bold]{len(g)} entities, {g.number_of_edges()} relations")
        for node, data in sorted(g.nodes(data=True), key=lambda nd: -g.out_degree(nd[0])):
            if not g.out_degree(node):
                continue
            branch = tree.add(f"[bold]{data['name']}[/] [dim]({data['type']})[/]")
            for _, target, edge in g.out_edges(node, data=True):
                style = "" if edge["valid"] else "[strike dim]"
                branch.add(f"{style}{edge['relation']} -> {g.nodes[target]['name']}"
                           + ("" if edge["valid"] else f"[/]  [dim]{edge['reason']}[/]"))
        out.print(tree)
    if picture is not None:
        from hybridmem.viz import draw

        draw(g, picture)
        err.print(f"wrote {picture}")


@app.command()
def history(memory_id: str, data_dir: DataDir = None, config: ConfigFile = None,
            as_json: AsJson = False) -> None:
    """What happened to one memory."""
    with _memory(data_dir, config) as memory:
        rows = memory.history(memory_id)
    if not rows:
        raise NotFoundError(f"no history for memory {memory_id!r}")
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"history of {memory_id}")
    for column in ("when", "event", "old", "new", "detail"):
        table.add_column(column)
    for row in rows:
        detail = (row.get("detail") or {}).get("reason", "")
        table.add_row(row["created_at"][:19], row["event"], row["old_memory"] or "",
                      row["new_memory"] or "", detail)
    out.print(table)


@app.command()
def delete(
    memory_id: Annotated[str | None, typer.Argument(help="The memory to erase.")] = None,
    all_in_scope: Annotated[bool, typer.Option("--all",
                                               help="Erase the whole scope.")] = False,
    user: User = None, agent: Agent = None, run: Run = None,
    data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Erase one memory, or (`--all` with a scope) everything in a scope."""
    if (memory_id is None) == (not all_in_scope):
        raise InvalidInputError("give a MEMORY_ID, or --all with --user/--agent/--run")
    with _memory(data_dir, config) as memory:
        if all_in_scope:
            result = memory.delete_all(**_scope(user, agent, run))
        else:
            result = memory.delete(memory_id)
    _print_json(result) if as_json else out.print(result["message"])


@app.command("export")
def export_cmd(
    user: User = None, agent: Agent = None, run: Run = None,
    all_scopes: Annotated[bool, typer.Option("--all", help="Every scope.")] = False,
    output: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    data_dir: DataDir = None, config: ConfigFile = None,
) -> None:
    """Write memories, entities and relations (with history) as JSON lines."""
    with _memory(data_dir, config) as memory:
        lines = memory.export(**_scope(user, agent, run), all_scopes=all_scopes)
        target = output.open("w", encoding="utf-8") if output else sys.stdout
        count = 0
        try:
            for line in lines:
                target.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
        finally:
            if output:
                target.close()
    if output:
        err.print(f"wrote {count} lines to {output}")


@app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="A file made by `hybridmem export`.")],
    data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False,
) -> None:
    """Load an export file (ids kept, texts embedded again)."""
    try:
        raw = source.read_text(encoding="utf-8").splitlines()
        lines = [json.loads(line) for line in raw if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read {source}: {exc}") from None
    with _memory(data_dir, config) as memory, Progress(console=err,
                                                      disable=as_json) as progress:
        task = progress.add_task("importing", total=len(lines))
        counts = memory.import_lines(lines, progress=lambda n: progress.advance(task, n))
    _print_json(counts) if as_json else out.print(
        f"imported {counts['memories']} memories, {counts['entities']} entities, "
        f"{counts['relations']} relations")


@app.command()
def stats(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Row counts in each store."""
    with _memory(data_dir, config) as memory:
        _print_json(memory.stats())


@app.command()
def demo(data_dir: DataDir = None) -> None:
    """Run the offline demo (the article's seven statements and four questions)."""
    from hybridmem.demo import run

    run(str(data_dir) if data_dir else None)


def main() -> int:
    """Entry point of the `hybridmem` console script."""
    try:
        app(standalone_mode=False)
    except NotFoundError as exc:
        err.print(f"[red]not found:[/] {exc}")
        return 1
    except (InvalidInputError, ConfigError) as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    except StoreError as exc:
        err.print(f"[red]store error:[/] {exc}")
        return 3
    except ProviderError as exc:
        err.print(f"[red]provider error:[/] {exc}")
        return 4
    except HybridMemError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
