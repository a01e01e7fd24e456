"""Run a heavy model's computation in its own process.

Why: dbt-duckdb runs Python models inside the dbt process, so two models on dbt's two threads
share one interpreter lock; ``make bench`` measured 1.28 of 2 cores used over ``mipa run``
(142 CPU-s in 111 s) while the inference and sensitivity models ran side by side. A model
that hands its computation to one child process releases the lock while it waits, so each dbt
thread keeps one core busy: never more busy processes than dbt's threads.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["progress_line", "run_in_child_process"]

T = TypeVar("T")


def progress_line(message: str) -> None:
    """One progress line on stderr (``[mipa] ...``), flushed: what a model is doing."""
    print(f"[mipa] {message}", file=sys.stderr, flush=True)


def _with_notes(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """``fn`` with its warnings gathered and printed once each as a one-line note, without
    the source lines Python prints (the marts carry the reasons row by row)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return fn(*args, **kwargs)
        finally:
            seen: dict[str, int] = {}
            for w in caught:
                text = str(w.message).splitlines()[0] if str(w.message) else type(w.message).__name__
                seen[text] = seen.get(text, 0) + 1
            for text, n in seen.items():
                progress_line(f"note: {text}" + (f" ({n} times)" if n > 1 else ""))


def run_in_child_process(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in one fresh (spawned) process; its result or its exception.
    Warnings become one-line notes on stderr (:func:`_with_notes`).

    ``fn`` and the arguments must be picklable (a module-level function, DataFrames,
    dataclasses). Spawned, not forked: the caller (dbt) holds threads and a database
    connection. ``MIPA_MODEL_CHILD_PROCESS=0`` runs it in this process instead.
    """
    if os.environ.get("MIPA_MODEL_CHILD_PROCESS", "1") == "0":
        return _with_notes(fn, args, kwargs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_with_notes, fn, args, kwargs).result()
