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
