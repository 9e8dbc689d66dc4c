"""The package's rooms: every subpackage installs, and no room imports one that imports it
back (stores <- write/read <- facade; providers below the paths)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hybridmem"


def _room(module: str) -> str:
    """hybridmem.stores.kuzu -> "stores"; a top-level module is its own room."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hybridmem"


def _imports() -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("hybridmem.") and _room(name) != _room(module):
                    rooms.setdefault(_room(module), set()).add(_room(name))
    return rooms


def test_every_subpackage_is_installed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert on_disk | {"hybridmem.schemas"} == listed


def test_the_readme_layout_names_every_module():
    """The README's Layout section is the map a newcomer reads: every module is on it."""
    readme = (ROOT / "README.md").read_text("utf-8")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    missing = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and path.name not in layout
    )
    assert missing == [], f"modules the README's Layout does not name: {missing}"


def test_no_room_imports_one_that_imports_it_back():
    graph = _imports()
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    cycles = []
    for room in subpackages:
        # every room reachable from `room` must not reach back to it
        seen, todo = set(), [r for r in graph.get(room, ()) if r in subpackages]
        while todo:
            nxt = todo.pop()
            if nxt in seen:
                continue
            seen.add(nxt)
            todo.extend(r for r in graph.get(nxt, ()) if r in subpackages)
        if room in seen:
            cycles.append(room)
    assert cycles == [], f"rooms on an import cycle: {sorted(cycles)}; imports: {graph}"


def test_engines_implement_the_store_protocols():
    """The write and read paths are typed against `stores/base.py`; the Milvus and Kuzu
    classes must provide every member with the same parameters (a new backend gets the
    same check by being added here)."""
    import inspect

    from hybridmem.stores.base import GraphStore, VectorStore
    from hybridmem.stores.kuzu import KuzuGraphStore
    from hybridmem.stores.milvus import MilvusVectorStore
    from hybridmem.stores.opened import LazyVectors

    for protocol, engine in ((VectorStore, MilvusVectorStore), (GraphStore, KuzuGraphStore)):
        for name, member in vars(protocol).items():
            if name.startswith("_"):
                continue
            assert hasattr(engine, name), f"{engine.__name__} lacks {name}"
            if isinstance(member, property):
                assert isinstance(getattr(engine, name), property), name
                continue
            expected = list(inspect.signature(member).parameters)
            got = list(inspect.signature(getattr(engine, name)).parameters)
            assert got == expected, f"{engine.__name__}.{name}{got} != {expected}"
    assert callable(LazyVectors.ensure_open)
