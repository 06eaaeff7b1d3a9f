"""`python -m tests.fuzz`: a longer fuzz run.

    python -m tests.fuzz --minutes 30 --seed 1 --mode all

prints the counts (cases, requests, frames, failures) and, for each failure,
a reproducer (seed and bytes, shrunk where it can be), also written as JSON
files under --out. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fuzz.runner import MODES, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all")
    parser.add_argument("--loops", default="asyncio,cppcorn", help="event loops for the in-process mode")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where reproducers are written")
    args = parser.parse_args(argv)
    result = run(args.mode, args.minutes * 60, args.seed, loops=tuple(args.loops.split(",")), out=args.out)
    print(result.summary())
    shown = set()
    for finding in result.findings:
        if finding.signature() in shown:
            continue
        shown.add(finding.signature())
        print(finding.reproducer())
    if result.findings:
        print(f"reproducers written to {args.out}/")
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
