"""A model's computation handed to a child process returns the same result and raises the same error."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from mipa.estimability import NotEstimable
from mipa.processes import run_in_child_process


def _pid_and_sum(frame: pd.DataFrame, *, column: str) -> tuple[int, float]:
    return os.getpid(), float(frame[column].sum())


def _refuse() -> None:
    raise NotEstimable("no_post_treatment_data", "nothing after the start")


def test_runs_in_another_process_and_returns_the_result():
    frame = pd.DataFrame({"x": [1.5, 2.5]})
    pid, total = run_in_child_process(_pid_and_sum, frame, column="x")
    assert total == 4.0 and pid != os.getpid()


def test_the_child_error_reaches_the_caller(monkeypatch):
    with pytest.raises(NotEstimable, match="nothing after the start"):
        run_in_child_process(_refuse)
    monkeypatch.setenv("MIPA_MODEL_CHILD_PROCESS", "0")
    assert run_in_child_process(_pid_and_sum, pd.DataFrame({"x": [1.0]}), column="x")[0] == os.getpid()


def _warns() -> int:
    import warnings

    for _ in range(3):
        warnings.warn("88 ATT(g,t) cells could not be estimated\nsecond line", UserWarning, stacklevel=1)
    warnings.warn("another", RuntimeWarning, stacklevel=1)
    return 7


def test_warnings_become_one_line_notes_without_source_lines(monkeypatch, capfd):
    monkeypatch.setenv("MIPA_MODEL_CHILD_PROCESS", "0")
    assert run_in_child_process(_warns) == 7
    err = capfd.readouterr().err.splitlines()
    assert err == ["[mipa] note: 88 ATT(g,t) cells could not be estimated (3 times)", "[mipa] note: another"]
