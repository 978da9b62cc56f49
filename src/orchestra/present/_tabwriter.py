"""Elastic tabstops, as kubectl lays out ``describe`` (Go's ``text/tabwriter`` with
padding 2 and spaces).

A line is cut into cells at its tabs; the text after a line's last tab is not a cell
and is never padded. A column block is a run of consecutive lines that all have a cell
in that column: every cell of the block is padded to the block's widest cell plus
``padding``. A line without a tab ends every block, so ``Key:\\tvalue`` lines align with
their neighbours and a section heading such as ``Containers:`` starts afresh.
"""

from __future__ import annotations

__all__ = ["align"]


def align(lines: list[str], padding: int = 2, min_width: int = 0) -> list[str]:
    """``lines`` with their tabs replaced by the padding that aligns each column block
    (a cell with its padding is at least ``min_width`` wide: kubectl get's is 6)."""
    rows = [line.split("\t") for line in lines]
    widths: list[list[int]] = [[] for _ in rows]  # per line, the width of each cell
    _blocks(rows, widths, 0, 0, len(rows), padding, min_width)
    out = []
    for cells, w in zip(rows, widths, strict=True):
        head = "".join(cell.ljust(width) for cell, width in zip(cells, w, strict=False))
        out.append((head + "".join(cells[len(w):])).rstrip())
    return out


def _blocks(rows: list[list[str]], widths: list[list[int]], column: int, start: int,
            end: int, padding: int, min_width: int = 0) -> None:
    """Give column ``column`` its width in every block of lines ``start:end`` (lines
    that have a cell there, i.e. more than ``column + 1`` parts), then the next column
    within each block."""
    i = start
    while i < end:
        if len(rows[i]) - 1 <= column:  # no cell in this column: not in a block
            i += 1
            continue
        j = i
        width = min_width
        while j < end and len(rows[j]) - 1 > column:
            width = max(width, len(rows[j][column]) + padding)
            j += 1
        for k in range(i, j):
            widths[k].append(width)
        _blocks(rows, widths, column + 1, i, j, padding, min_width)
        i = j
