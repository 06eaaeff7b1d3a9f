"""What a fuzz run reports: a `Finding` (which invariant broke, on which
case, with the bytes to reproduce it), and the reproducer files. Every
finding is a defect: a fixed one becomes a regression test of its own."""

from __future__ import annotations

import json
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

    def signature(self) -> tuple[str, str]:
        """What makes two findings the same defect, for counting distinct ones."""
        return (self.mode, self.invariant)

    def reproducer(self) -> str:
        shown = self.data if len(self.data) <= 4000 else self.data[:4000] + b"...(%d bytes)" % len(self.data)
        return (
            f"[{self.mode}] {self.invariant}: {self.message}\n  case: {self.case}\n"
            f"  bytes: {shown!r}\n"
        )

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.mode}-{self.invariant}-{self.seed}.json"
        record = asdict(self)
        record["data"] = self.data.decode("latin-1")  # bytes 0-255 as code points 0-255
        record["context"] = {key: repr(value) for key, value in self.context.items()}
        path.write_text(json.dumps(record, indent=1))
        return path
