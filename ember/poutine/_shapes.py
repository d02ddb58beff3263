"""The shape table printed by :meth:`~ember.poutine.trace_struct.Trace.format_shapes`.

The layout matches Pyro's character for character, since it appears in error messages that
users and tests match: three column groups (site label, batch dims, event dims after ``|``),
the first two right-justified and the last left-justified, cells joined by single spaces.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

# A row is a list of groups; each group is a list of cells.
_Row = list[list[str]]


def _dims(shape: Iterable[int]) -> list[str]:
    return [str(size) for size in shape]


def _site_rows(name: str, site: Mapping[str, Any]) -> list[_Row]:
    fn = site["fn"]
    event_shape = tuple(getattr(fn, "event_shape", ()))
    rows: list[_Row] = [
        [[name + " dist"], _dims(getattr(fn, "batch_shape", ())) + ["|"], _dims(event_shape)]
    ]
    shape = tuple(getattr(site["value"], "shape", ()))
    split = len(shape) - len(event_shape)
    rows.append([["value"], _dims(shape[:split]) + ["|"], _dims(shape[split:])])
    if "log_prob" in site:
        rows.append([["log_prob"], _dims(getattr(site["log_prob"], "shape", ())) + ["|"], []])
    return rows


def format_shapes(nodes: Mapping[str, Mapping[str, Any]], title: str, last_site: str | None) -> str:
    """Render the param and sample sites of ``nodes`` as a table, stopping after ``last_site``."""
    if not nodes:
        return title
    rows: list[_Row] = [[[title], [], []], [["Param Sites:"], [], []]]
    for name, site in nodes.items():
        if site["type"] == "param":
            rows.append([[name], _dims(site["value"].shape), []])
        if name == last_site:
            break
    rows.append([["Sample Sites:"], [], []])
    for name, site in nodes.items():
        if site["type"] == "sample":
            rows.extend(_site_rows(name, site))
        if name == last_site:
            break
    return _render(rows)


def _render(rows: Sequence[_Row]) -> str:
    group_widths = [max(len(row[g]) for row in rows) for g in range(3)]
    padded: list[list[str]] = []
    for row in rows:
        cells: list[str] = []
        for g, (group, width) in enumerate(zip(row, group_widths)):
            fill = [""] * (width - len(group))
            cells.extend(group + fill if g == 2 else fill + group)
        padded.append(cells)
    widths = [max(len(cells[j]) for cells in padded) for j in range(len(padded[0]))]
    return "\n".join(
        " ".join(cell.rjust(width) for cell, width in zip(cells, widths)) for cells in padded
    )
