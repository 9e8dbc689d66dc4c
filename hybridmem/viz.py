"""Drawing a user's entity graph (matplotlib, optional): used by the CLI and the notebook."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from hybridmem.errors import ConfigError, InvalidInputError

TYPE_COLOURS = {
    "person": "#4C78A8", "place": "#F58518", "organization": "#54A24B", "animal": "#E45756",
    "activity": "#72B7B2", "name": "#EECA3B", "thing": "#B279A2", "number": "#9D755D",
}


def check_target(path: str | Path) -> None:
    """Refuse a picture path `draw` could not write, before any work is done: a format
    matplotlib does not write, or a folder that is not there.

    Raises:
        ConfigError: matplotlib is not installed.
        InvalidInputError: the suffix names no format matplotlib writes, or the folder
            the picture would go in does not exist (or is a file).
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:
        raise ConfigError("drawing needs matplotlib: pip install 'hybridmem[viz]'") from exc
    path = Path(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise InvalidInputError(
            f"cannot draw {path}: format {suffix!r} is not one matplotlib writes "
            f"(use {', '.join('.' + f for f in sorted(formats))})")
    folder = path.parent
    if not folder.exists():
        raise InvalidInputError(f"cannot draw {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInputError(f"cannot draw {path}: {folder} is not a folder")


def draw(graph: nx.MultiDiGraph, path: str | Path | None = None, *, ax=None,
         show_invalid: bool = True, seed: int = 7):
    """Draw entities coloured by type, current relations solid, ended ones dashed.

    Writes a picture to `path` (any matplotlib format: .png, .svg, .pdf) when given;
    returns the matplotlib Axes.

    Raises:
        ConfigError: matplotlib is not installed.
        InvalidInputError: `path` cannot be written (see `check_target`, or the OS refused).
    """
    if path is not None:
        check_target(path)
    try:
        import matplotlib

        if path is not None and ax is None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("drawing needs matplotlib: pip install 'hybridmem[viz]'") from exc
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 6.5))
    positions = nx.spring_layout(nx.Graph(graph), seed=seed, k=1.2) if len(graph) else {}
    colours = [TYPE_COLOURS.get(graph.nodes[n].get("type"), "#BAB0AC") for n in graph.nodes]
    nx.draw_networkx_nodes(graph, positions, ax=ax, node_color=colours, node_size=900,
                           alpha=0.9)
    nx.draw_networkx_labels(graph, positions, ax=ax, font_size=9,
                            labels={n: d.get("name", n) for n, d in graph.nodes(data=True)})
    for valid in (True, False):
        if not valid and not show_invalid:
            continue
        edges = [(u, v) for u, v, d in graph.edges(data=True) if d.get("valid", True) == valid]
        # Ended edges bend the other way so they do not hide under the current ones.
        nx.draw_networkx_edges(graph, positions, edgelist=edges, ax=ax, arrows=True,
                               style="solid" if valid else "dashed",
                               edge_color="#333333" if valid else "#AAAAAA",
                               node_size=900,
                               connectionstyle=f"arc3,rad={0.08 if valid else -0.3}")
    labels: dict[tuple[str, str], list[str]] = {}
    for u, v, d in graph.edges(data=True):
        if d.get("valid", True):
            labels.setdefault((u, v), []).insert(0, d["relation"])
        elif show_invalid:
            labels.setdefault((u, v), []).append(f"({d['relation']}, ended)")
    nx.draw_networkx_edge_labels(graph, positions, ax=ax, font_size=8,
                                 edge_labels={k: "\n".join(v) for k, v in labels.items()})
    ax.set_axis_off()
    if path is not None:
        try:
            ax.figure.savefig(path, bbox_inches="tight", dpi=120)
        except OSError as exc:  # e.g. a read-only folder: the OS's words, not a traceback
            raise InvalidInputError(f"cannot draw {path}: {exc.strerror or exc}") from None
    return ax
