"""Shrinking an HTTP finding to a smaller reproducer: the same invariant
must still break with all bytes in one read, then with fewer requests, then
with the stream cut shorter. Greedy and bounded: a reproducer, not a proof
of minimality."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tests.fuzz.findings import CaseFailed
from tests.fuzz.http_gen import HttpCase

MAX_TRIES = 60


def shrink_http(case: HttpCase, invariant: str, run: Callable[[HttpCase], object]) -> HttpCase:
    """The smallest variant of `case` found on which `run` still fails `invariant`."""
    tries = 0

    def still_fails(candidate: HttpCase) -> bool:
        nonlocal tries
        tries += 1
        try:
            run(candidate)
        except CaseFailed as error:
            return error.invariant == invariant
        except Exception:
            return False
        return False

    def variant(data: bytes, reads: list[int] | None = None) -> HttpCase:
        return dataclasses.replace(case, data=data, reads=reads if reads is not None else [len(data)])

    best = case
    if len(case.reads) > 1 and still_fails(variant(case.data)):
        best = variant(case.data)
    for spec in reversed(case.requests[1:]):  # whole requests off the end
        if tries >= MAX_TRIES or spec.start >= len(best.data):
            continue
        candidate = variant(best.data[: spec.start], None if len(best.reads) == 1 else best.reads)
        candidate.reads = [len(candidate.data)] if sum(best.reads) != len(candidate.data) else candidate.reads
        if still_fails(candidate):
            best = candidate
    step = len(best.data) // 2
    while step and tries < MAX_TRIES:  # bytes off the end
        candidate = variant(best.data[: len(best.data) - step])
        if candidate.data and still_fails(candidate):
            best = candidate
        else:
            step //= 2
    return best
