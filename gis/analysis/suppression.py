"""Small-count suppression of incident aggregates for callers who may read counts but not the
incidents (layers.model.Aggregates: the public, with a minimum of 3).

The rules, the same in every output (JSON, GeoJSON, CSV, vector tiles, rasters, charts):

- A count of 1 to MIN - 1 is *primary*-suppressed: published as null with `suppressed: true`
  (an empty CSV field). Zero is published: a commune with no incident locates nobody.
- Counts that are cells of space (heatmap cells, grid cells, raster cells) are not published
  at all when suppressed, not even as null: a cell marked "1 or 2" would itself locate an
  incident. Their totals are the sums of the published cells only, so that subtracting the
  published cells from the total recovers nothing.
- Counts that add up to a published total (categories, statuses, severities, time buckets,
  communes) are suppressed with a *secondary* suppression: when exactly one member of the
  group is primary-suppressed, the smallest other non-zero member is suppressed too, so the
  total minus the published members is the sum of two hidden counts, not one count. The total
  itself is suppressed when it is itself under MIN.

Residual risk (documented in docs/analytics.md): a caller can still difference two requests
whose filters differ slightly (two windows one second apart, two overlapping bounding boxes or
units); the suppression limits what one answer shows, not what many answers combined may
reveal. Secondary suppression bounds the two hidden counts of a group (one of them is 1 or 2,
the other at most the smallest published one) without revealing either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def small(n: int | float, k: int) -> bool:
    """Whether a count N must be hidden under a minimum of K (K = 0: nothing is hidden)."""
    return 0 < n < k


def group(values: Sequence[int], k: int) -> list[int | None]:
    """VALUES of a group whose total is published, with primary and secondary suppression
    (None = suppressed)."""
    if k <= 0:
        return list(values)
    hidden = [small(v, k) for v in values]
    if sum(hidden) == 1:
        others = [(v, i) for i, v in enumerate(values) if v > 0 and not hidden[i]]
        if others:
            hidden[min(others)[1]] = True
    return [None if h else v for v, h in zip(values, hidden, strict=True)]


def table(rows: Sequence[Sequence[int]], k: int) -> list[list[int | None]]:
    """A two-way table (rows x columns) whose row totals, column totals and grand total may be
    published, here or by another output (a category's count in /stats, a day's count in a
    series): primary suppression, then secondary suppression until no row, no column and not
    the whole table holds exactly one suppressed cell it could give away. The result is
    audited (`recoverable`: peeling published margins one unknown cell at a time); when a small
    count could still be worked out, the whole table is withheld (every cell null)."""
    if k <= 0:
        return [list(r) for r in rows]
    values = [list(r) for r in rows]
    hidden = [[small(v, k) for v in r] for r in values]
    pinned: set[tuple[int, int]] = set()
    lines = _lines(values)

    def settle(cells: list[tuple[int, int]]) -> bool:
        alone = [(i, j) for i, j in cells if hidden[i][j]]
        if len(alone) != 1 or sum(values[i][j] for i, j in cells) < k:
            return False  # nothing hidden, two or more, or the margin is itself suppressed
        others = [(values[i][j], i, j) for i, j in cells
                  if values[i][j] > 0 and not hidden[i][j] and (i, j) not in pinned]
        if others:
            _, i, j = min(others)
            hidden[i][j] = True
            return True
        (i, j), = alone
        if not small(values[i][j], k) and (i, j) not in pinned:
            # A secondary cell with no partner here: publish it (it is not small) for good.
            hidden[i][j] = False
            pinned.add((i, j))
            return True
        return False

    changed = True
    while changed:
        changed = False
        for line in lines:
            changed |= settle(line)
    if recoverable(values, hidden, k):
        return [[None] * len(r) for r in values]
    return [[None if h else v for v, h in zip(r, hr, strict=True)]
            for r, hr in zip(values, hidden, strict=True)]


def _lines(values: Sequence[Sequence[int]]) -> list[list[tuple[int, int]]]:
    n_cols = max((len(r) for r in values), default=0)
    lines = [[(i, j) for j in range(len(r))] for i, r in enumerate(values)]
    lines += [[(i, j) for i, r in enumerate(values) if j < len(r)] for j in range(n_cols)]
    lines.append([(i, j) for i, r in enumerate(values) for j in range(len(r))])
    return lines


def recoverable(values: Sequence[Sequence[int]], hidden: Sequence[Sequence[bool]],
                k: int) -> bool:
    """Whether a small hidden count follows from the published cells and the margins (row,
    column and grand totals of K or more, of two non-zero cells or more, which other outputs
    may publish), by solving one line with one unknown cell at a time."""
    known = {(i, j) for i, r in enumerate(hidden) for j, h in enumerate(r) if not h}
    # A margin with a single non-zero cell is that cell: outputs that publish it suppress it
    # as they suppress the cell, so it is not taken as published.
    lines = [line for line in _lines(values) if sum(values[i][j] for i, j in line) >= k
             and sum(values[i][j] > 0 for i, j in line) >= 2]
    changed = True
    while changed:
        changed = False
        for line in lines:
            unknown = [c for c in line if c not in known]
            if len(unknown) == 1:
                known.add(unknown[0])
                changed = True
    return any(small(values[i][j], k) and hidden[i][j] and (i, j) in known
               for i, r in enumerate(values) for j in range(len(r)))


def mapping(values: Mapping[str, int], k: int) -> dict[str, int | None]:
    """A group given as a mapping (counts by category, severity, status)."""
    keys = list(values)
    return dict(zip(keys, group([values[key] for key in keys], k), strict=True))


def total(n: int, k: int) -> int | None:
    return None if small(n, k) else n


def cell_mask(counts: np.ndarray, k: int) -> np.ndarray:
    """True for the cells of space that may be published (count 0 or at least K)."""
    if k <= 0:
        return np.ones(counts.shape, dtype=bool)
    return ~((counts > 0) & (counts < k))


NOTE = {"vi": "Để bảo vệ người dân, số liệu của ô lưới, xã hoặc nhóm có dưới {k} sự cố được ẩn "
              "với người chưa đăng nhập; sự cố an ninh không được tính.",
        "en": "To protect people, figures of grid cells, communes or groups with fewer than {k} "
              "incidents are hidden from visitors who are not signed in; security events are "
              "not counted."}


def note(k: int) -> dict[str, str]:
    """The legend's note on suppression, Vietnamese first."""
    return {lang: text.format(k=k) for lang, text in NOTE.items()}
