"""What a fuzz run reports: a `Finding` (which invariant broke, on which
case, with the bytes to reproduce it), the issue-17 defects a finding is
already known as, and the reproducer files.

KNOWN_DEFECTS maps a defect number of issue 17 to a test on a finding, so
that the CI run stays meaningful on a tree where those defects are not fixed
yet: an entry goes once its fix is merged. It is kept small on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


class CaseFailed(Exception):
    """An invariant did not hold for a case."""

    def __init__(self, invariant: str, message: str, **context: object) -> None:
        super().__init__(f"{invariant}: {message}")
        self.invariant = invariant
        self.message = message
        self.context = context


@dataclass
class Finding:
    mode: str  # "inprocess", "differential", "sockets"
    invariant: str
    message: str
    case: str  # the case's description (generator, seed, shape)
    seed: int
    data: bytes  # what the client sent
    reads: list[int] = field(default_factory=list)
    ending: str = ""
    context: dict = field(default_factory=dict)
    known_defect: int | None = None

    def signature(self) -> tuple[str, str, int | None]:
        """What makes two findings the same defect, for counting distinct ones."""
        return (self.mode, self.invariant, self.known_defect)

    def reproducer(self) -> str:
        shown = self.data if len(self.data) <= 4000 else self.data[:4000] + b"...(%d bytes)" % len(self.data)
        return (
            f"[{self.mode}] {self.invariant}: {self.message}\n  case: {self.case}\n"
            f"  known defect: {self.known_defect}\n  bytes: {shown!r}\n"
        )

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.mode}-{self.invariant}-{self.seed}.json"
        record = asdict(self)
        record["data"] = self.data.decode("latin-1")  # bytes 0-255 as code points 0-255
        record["context"] = {key: repr(value) for key, value in self.context.items()}
        path.write_text(json.dumps(record, indent=1))
        return path


def _context(finding: Finding, key: str) -> object:
    return finding.context.get(key)


# defect number -> does this finding show that defect? (issue 17's list)
KNOWN_DEFECTS: dict[int, Callable[[Finding], bool]] = {
    4: lambda f: (
        f.invariant in ("kept-alive-after-close", "differential-kept-alive", "not-closed")
        and bool(_context(f, "transfer_encoding_in_1_0"))
    ),
    3: lambda f: (
        f.invariant in ("kept-alive-after-close", "differential-kept-alive", "not-closed")
        and _context(f, "http_version") == "1.0"
    ),
    5: lambda f: (
        f.invariant.startswith("differential")
        and (_context(f, "method") == "CONNECT" or bool(_context(f, "after_connect")))
    ),
    6: lambda f: f.invariant.startswith("differential") and _context(f, "host_count") not in (None, 1),
}


def classify(finding: Finding) -> Finding:
    for number, shows in KNOWN_DEFECTS.items():
        if shows(finding):
            finding.known_defect = number
            break
    return finding
