"""What an import tells its caller: the ImportReport (counts, warnings, every rejected row with
its number and reason) and the summary that goes into the audit log.

The report is the one answer of an import whether it committed, was a dry run or was refused,
so the API and the CLI render the same object; the audit keeps a fixed subset of it (never the
rejected rows, whose reasons quote values that may be personal data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from layers.errors import Message

# Rejections listed in a report (the count is always exact): a million bad rows must not make
# a million-entry answer.
MAX_LISTED = 1000

# The report's members that go into the audit row (counts and outcome; no row contents).
AUDIT_KEYS = ("file", "format", "source_crs", "encoding", "rows", "inserted", "updated", "unchanged",
              "repaired", "rejected_count", "dry_run", "committed", "error")


class Reason(str):
    """Why a row is refused: the English text (what the report says, the CLI prints) that also
    knows its catalogue entries (api/messages.py), one per part of a reason joined from
    several, so that the API words it in the user's language. A plain str is a part without
    an entry."""

    parts: tuple[tuple[str, Message | None], ...]

    def __new__(cls, text: str, key: str | None = None, **args: Any) -> Reason:
        out = super().__new__(cls, text)
        out.parts = ((text, Message(key, args or None) if key else None),)
        return out

    @classmethod
    def join(cls, reasons: Iterable[str]) -> Reason:
        """REASONS as one, "; "-separated, each part keeping its entry."""
        reasons = list(reasons)
        out = super().__new__(cls, "; ".join(reasons))
        out.parts = tuple(p for r in reasons for p in parts_of(r))
        return out


def parts_of(reason: str) -> tuple[tuple[str, Message | None], ...]:
    return reason.parts if isinstance(reason, Reason) else ((str(reason), None),)


@dataclass
class Rejection:
    """One refused row: its 1-based number in the source file (header not counted), why, and
    which file of a zip of several it came from. `parts`: the reason's catalogue entries."""

    row: int
    reason: str
    file: str | None = None
    parts: tuple[tuple[str, Message | None], ...] = field(default=(), repr=False, compare=False)


@dataclass
class ImportReport:
    """The outcome of one import; `ok` says whether it succeeded as asked."""

    layer: str
    file: str
    format: str = ""
    source_crs: str | None = None
    encoding: str | None = None
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    committed: bool = False
    dry_run: bool = False
    all_or_nothing: bool = True
    error: str | None = None
    # `error`'s catalogue entry (api/messages.py), for the API to word it in the user's
    # language; not part of the report itself.
    error_entry: Message | None = field(default=None, repr=False, compare=False)

    def reject(self, row: int, reason: str, file: str | None = None) -> None:
        """Count a refused row; list it while the list is shorter than MAX_LISTED."""
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED:
            self.rejected.append(Rejection(row, str(reason), file, parts_of(reason)))

    @property
    def ok(self) -> bool:
        """No file error, and no rejection unless the caller asked for a partial import."""
        return self.error is None and (self.rejected_count == 0 or not self.all_or_nothing)

    def to_json(self) -> dict[str, Any]:
        """The report as the API and `geoioc import --json` give it (with `ok`)."""
        out = asdict(self)
        out.pop("error_entry", None)
        for r in out["rejected"]:
            r.pop("parts", None)
        out["ok"] = self.ok
        return out


def audit_target(report: ImportReport) -> dict[str, Any]:
    """The audit log's summary of REPORT."""
    return {k: getattr(report, k) for k in AUDIT_KEYS}
