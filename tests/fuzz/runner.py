"""One fuzz run over the three modes with a time budget: the counts, and
the findings with their reproducers (shrunk where the case allows it),
written to a directory as JSON."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.differential import run_differential_case
from tests.fuzz.findings import CaseFailed, Finding
from tests.fuzz.http_gen import generate_http_case
from tests.fuzz.inprocess import Counts, fuzz, run_http_case
from tests.fuzz.shrink import shrink_http
from tests.fuzz.sockets import SocketCounts, fuzz_sockets
from tests.http_harness import Harness

MODES = ("inprocess", "differential", "sockets")
# The share of the time budget each mode gets in `--mode all`.
SHARES = {"inprocess": 0.45, "differential": 0.35, "sockets": 0.20}


@dataclass
class RunResult:
    inprocess: Counts = field(default_factory=Counts)
    differential_cases: int = 0
    differential_requests: int = 0
    sockets: SocketCounts = field(default_factory=SocketCounts)
    findings: list[Finding] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = []
        if "inprocess" in self.seconds:
            c, s = self.inprocess, self.seconds["inprocess"]
            lines.append(f"inprocess: {c.cases} cases ({c.cases / max(s, 1e-9):.0f}/s), {c.requests} requests, "
                         f"{c.responses} responses, {c.frames} frames, {c.messages} messages")  # fmt: skip
        if "differential" in self.seconds:
            rate = self.differential_cases / max(self.seconds["differential"], 1e-9)
            lines.append(f"differential: {self.differential_cases} cases ({rate:.0f}/s), "
                         f"{self.differential_requests} requests compared")  # fmt: skip
        if "sockets" in self.seconds:
            k = self.sockets
            lines.append(f"sockets: {k.connections} connections, {k.batches} batches, {k.resets} resets, "
                         f"{k.bytes_sent} bytes sent")  # fmt: skip
        by_kind: dict[tuple, int] = {}
        for finding in self.findings:
            by_kind[finding.signature()] = by_kind.get(finding.signature(), 0) + 1
        lines.append(f"failures: {len(self.findings)}")
        lines += [f"  {mode} {invariant}: {count}" for (mode, invariant), count in by_kind.items()]
        return "\n".join(lines)


def differential_findings(seeds: Iterator[int], deadline: float, result: RunResult) -> None:
    harness = Harness("asyncio")
    try:
        for seed in seeds:
            if time.monotonic() > deadline:
                break
            case = generate_http_case(seed)
            result.differential_cases += 1
            try:
                result.differential_requests += run_differential_case(harness, case)
            except CaseFailed as error:
                finding = Finding("differential", error.invariant, error.message, case.describe(), seed, case.data,
                                  case.reads, case.ending, error.context)  # fmt: skip
                result.findings.append(finding)
    finally:
        harness.close()


def shrink(finding: Finding) -> Finding:
    """A smaller reproducer for an HTTP finding of the in-process or differential mode."""
    if finding.mode not in ("inprocess", "differential") or not finding.case.startswith("http"):
        return finding
    case = generate_http_case(finding.seed)
    run = run_http_case if finding.mode == "inprocess" else run_differential_case

    def attempt(candidate):  # a fresh loop each time: a failing case may leave anything behind
        with Harness("asyncio") as harness:
            return run(harness, candidate)

    try:
        small = shrink_http(case, finding.invariant, attempt)
    except Exception:
        return finding
    return dataclasses.replace(finding, data=small.data, reads=small.reads, case=finding.case + " (shrunk)")


def run(
    mode: str,
    seconds: float,
    seed: int,
    *,
    loops: tuple[str, ...] = ("asyncio",),
    out: Path | None = None,
    shrink_findings: bool = True,
) -> RunResult:
    """Run `mode` ("all" or one of MODES) for about `seconds`, with seeds from `seed` on."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the client side's "socket.send() raised"
    result = RunResult()
    modes = MODES if mode == "all" else (mode,)
    for name in modes:
        budget = seconds * (SHARES[name] if mode == "all" else 1.0)
        start = time.monotonic()
        deadline = start + budget
        if name == "inprocess":
            share = budget / len(loops)
            for index, loop in enumerate(loops):
                loop_deadline = start + share * (index + 1)
                counts, findings = fuzz(_seeds(seed + index * 10_000_000), loop=loop, deadline=loop_deadline)
                result.inprocess.add(counts)
                result.findings += findings
        elif name == "differential":
            differential_findings(_seeds(seed), deadline, result)
        else:
            counts, findings = fuzz_sockets(seed, deadline=deadline)
            result.sockets = counts
            result.findings += findings
        result.seconds[name] = time.monotonic() - start
    if shrink_findings:
        shrunk = set()
        for index, finding in enumerate(result.findings):
            if finding.signature() not in shrunk:  # one per distinct kind
                shrunk.add(finding.signature())
                result.findings[index] = shrink(finding)
    if out is not None:
        for finding in result.findings:
            finding.write(out)
    return result


def _seeds(start: int) -> Iterator[int]:
    seed = start
    while True:
        yield seed
        seed += 1
