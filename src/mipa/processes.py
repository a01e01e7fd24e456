"""Run a heavy model's computation in its own process.

Why: dbt-duckdb runs Python models inside the dbt process, so two models on dbt's two threads
share one interpreter lock; ``make bench`` measured 1.28 of 2 cores used over ``mipa run``
(142 CPU-s in 111 s) while the inference and sensitivity models ran side by side. A model
that hands its computation to a worker process releases the lock while it waits, so each dbt
thread keeps one core busy: never more busy processes than dbt's threads. The workers stay for
the next model (their imports loaded).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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


# one pool for every model of the dbt process: a worker that ran one model has its imports
# loaded for the next (a spawn and the imports were ~2 s per model, 4 models on the critical path)
_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ProcessPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            # as many workers as cores: the callers are dbt's threads, each waiting for its one
            # task, so busy workers never outnumber them
            _POOL = ProcessPoolExecutor(max_workers=max(1, os.cpu_count() or 1),
                                        mp_context=multiprocessing.get_context("spawn"))
        return _POOL


def run_in_child_process(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a (spawned) worker process of this process's pool; its
    result or its exception. Warnings become one-line notes on stderr (:func:`_with_notes`).

    ``fn`` and the arguments must be picklable (a module-level function, DataFrames,
    dataclasses). Spawned, not forked: the caller (dbt) holds threads and a database
    connection. A pool whose worker died is replaced for the next call.
    ``MIPA_MODEL_CHILD_PROCESS=0`` runs it in this process instead.
    """
    global _POOL
    if os.environ.get("MIPA_MODEL_CHILD_PROCESS", "1") == "0":
        return _with_notes(fn, args, kwargs)
    pool = _pool()
    try:
        return pool.submit(_with_notes, fn, args, kwargs).result()
    except BrokenProcessPool:
        with _POOL_LOCK:
            if _POOL is pool:
                _POOL = None
        pool.shutdown(wait=False, cancel_futures=True)
        raise
