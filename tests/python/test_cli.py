"""The command line as a user meets it: help on every command and option, and user errors
as one line that says what to do, exit code 2 (subprocess calls of the installed mipa)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mipa.cli import build_parser, plain

EXE = Path(sys.executable).with_name("mipa")
CLI = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "mipa.cli"]
COMMANDS = ["simulate", "build", "run", "export", "report", "validate", "montecarlo", "robustness"]


def mipa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MIPA_DB_PATH", "MIPA_RAW_DIR")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_listed_with_one_line_of_help() -> None:
    res = mipa("--help")
    assert res.returncode == 0
    assert "thin dispatcher" not in res.stdout and "`" not in res.stdout
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in action._choices_actions}
    assert sorted(helps) == sorted(COMMANDS)
    for name, text in helps.items():
        assert text and "\n" not in text, name
        assert name in res.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_no_markup(command: str) -> None:
    sub = _subparsers()[command]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {action.option_strings or action.dest}"
    res = mipa(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "`" not in res.stdout, res.stdout
    assert not re.search(r"\*\w", res.stdout)


def test_run_and_export_document_their_database_options() -> None:
    run = mipa("run", "--help").stdout
    assert re.search(r"--raw-dir RAW_DIR\s+raw feeds", run)
    assert re.search(r"--db DB\s+database file", run)
    assert re.search(r"--db DB\s+database file", mipa("export", "--help").stdout)


def test_version() -> None:
    res = mipa("--version")
    assert res.returncode == 0 and res.stdout.startswith("mipa ")


def test_markup_is_removed_from_help_text() -> None:
    assert plain("run ``mipa build`` on a *copy* of `x`, see *.csv") == "run mipa build on a copy of x, see *.csv"


def _one_line_usage_error(res: subprocess.CompletedProcess, *words: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and "`" not in res.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["export", "--db", "nope.duckdb"], ["mipa export:", "nope.duckdb", "does not exist", "mipa build"]),
        (["montecarlo", "--n-treated", "9"], ["mipa montecarlo:", "--n-treated", "between 1 and 6"]),
        (["montecarlo", "--reps", "0"], ["--reps must be at least 1"]),
        (["montecarlo", "--outcome", "deportations"], ["unknown --outcome deportations", "forced_departures"]),
        (["montecarlo", "--reps", "x"], ["invalid int value", "see mipa montecarlo --help"]),
        (["report", "--db", "nope.duckdb"], ["mipa report:", "mipa build"]),
        (["validate", "--db", "nope.duckdb"], ["mipa validate:", "mipa build"]),
        (["robustness", "--db", "nope.duckdb", "--no-build"], ["mipa robustness:", "mipa build"]),
        (["validate", "--reference-date", "2025-13-01"], ["expected a date YYYY-MM-DD"]),
        (["simulate", "--scale", "0", "--out", "x"], ["--scale must be > 0"]),
        (["simulate", "--config", "nope.yml", "--out", "x"], ["--config nope.yml cannot be read"]),
        (["simulate", "--layout", "flemish"], ["invalid choice: 'flemish'", "see mipa simulate --help"]),
        (["build", "--raw-dir", "no_such_folder", "--db", "w.duckdb"], ["mipa build: raw folder no_such_folder",
                                                                        "mipa simulate"]),
        (["build", "--select", "x"], ["unrecognized arguments: --select", "after --"]),
        (["nosuch"], ["invalid choice: 'nosuch'", "see mipa --help"]),
        ([], ["COMMAND", "see mipa --help"]),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(tmp_path: Path, args: list[str], words: list[str]) -> None:
    _one_line_usage_error(mipa(*args, cwd=tmp_path), *words)


def test_export_of_a_database_without_marts_says_to_build(tmp_path: Path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    _one_line_usage_error(mipa("export", "--db", "empty.duckdb", cwd=tmp_path), "no panel marts", "mipa build")
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").iterdir())
