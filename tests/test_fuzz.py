"""The bounded CI run of the fuzzer (tests/fuzz/): fixed seed sets, about a
minute in all. A failure prints the reproducers. `python -m tests.fuzz
--minutes N` is the longer run."""

from __future__ import annotations

import sys
import time

import pytest

from tests.conftest import LOOPS
from tests.fuzz.inprocess import fuzz
from tests.fuzz.runner import RunResult, differential_findings
from tests.fuzz.sockets import fuzz_sockets

INPROCESS_SEEDS = 300  # each an HTTP and a WebSocket case
DIFFERENTIAL_SEEDS = 1200
SOCKET_SECONDS = 8.0


def assert_no_findings(findings) -> None:
    assert not findings, "\n".join(finding.reproducer() for finding in findings[:5])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("loop", [name for name in LOOPS if name != "uvloop"])
def test_inprocess_fuzz(loop):
    offset = LOOPS.index(loop) * 1_000_000  # each loop its own fixed seeds
    counts, findings = fuzz(range(offset, offset + INPROCESS_SEEDS), loop=loop)
    assert counts.cases == 2 * INPROCESS_SEEDS
    assert counts.requests and counts.messages  # the generators reach the application
    assert_no_findings(findings)


@pytest.mark.timeout(120)
def test_differential_fuzz():
    result = RunResult()
    differential_findings(iter(range(DIFFERENTIAL_SEEDS)), deadline=float("inf"), result=result)
    assert result.differential_cases == DIFFERENTIAL_SEEDS and result.differential_requests
    assert_no_findings(result.findings)


@pytest.mark.timeout(60)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmRSS from /proc")
def test_socket_fuzz():
    counts, findings = fuzz_sockets(7, deadline=time.monotonic() + SOCKET_SECONDS)
    assert counts.batches >= 1 and counts.connections
    assert_no_findings(findings)
