"""CPython's own test_asyncio on cppcorn.loop, the quick modules (CI).

The whole suite, with a side-by-side run on asyncio's loop, is
`python -m tests.asyncio_suite --compare`; this keeps its fast part in the
test run so that a change to the loop that breaks asyncio semantics fails CI.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import HAVE_CPPCORN_LOOP

pytestmark = [
    pytest.mark.skipif(not HAVE_CPPCORN_LOOP, reason="cppcorn.loop has no backend on this platform"),
    pytest.mark.skipif(importlib.util.find_spec("test.test_asyncio") is None,
                       reason="this Python was installed without its test suite"),
]


@pytest.mark.timeout(900)
def test_cpython_asyncio_suite_passes_on_cppcorn_loop():
    result = subprocess.run(
        [sys.executable, "-m", "tests.asyncio_suite", "--loop", "cppcorn", "--quick", "--min-pass", "95"],
        capture_output=True,
        text=True,
        timeout=880,
    )
    summary = "\n".join(result.stdout.splitlines()[-25:])
    assert result.returncode == 0, f"{summary}\n{result.stderr[-2000:]}"
    assert "OK:" in result.stdout, summary
