"""Signal handlers installed for the length of a `with` block."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Generator, Iterable
from types import FrameType
from typing import Any


@contextlib.contextmanager
def handling_signals(
    signals: Iterable[int], handler: Callable[[int, FrameType | None], Any]
) -> Generator[None, None, None]:
    """Handle `signals` with `handler` inside the block; the handlers they
    had before are back after it, however it ends. signal.signal() rather
    than loop.add_signal_handler(), which cannot give the previous ones back."""
    previous: dict[int, Any] = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old_handler in previous.items():
            signal.signal(sig, old_handler)
