"""Command-line entry point: ``mipa <command>``.

Each command lives in its own module and registers itself here. Help text is shown without
the docstrings' markup (backticks, emphasis), and a usage error is one line that says what
to do, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

# module path of each sub-command; every module defines register(subparsers)
COMMAND_MODULES = [
    "mipa.simulate.command",
    "mipa.commands",
    "mipa.export",
    "mipa.report.command",
    "mipa.quality.command",
    "mipa.montecarlo.command",
    "mipa.sensitivity.command",
]

# commands that read a built warehouse: a --db that does not exist is a usage error
READS_WAREHOUSE = ("export", "report", "validate", "robustness")

DESCRIPTION = (
    "Build the return-cooperation warehouse from the return service's feeds (or synthetic ones) "
    "and estimate the migration partnerships' effects with staggered difference-in-differences. "
    "Start with: mipa run. Each command has its own --help."
)


def plain(text: str) -> str:
    """Help text without reStructuredText/Markdown markup: ``x``, `x` and *x* become x."""
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    return re.sub(r"(?<![\w*])\*(\w(?:[\w '-]*\w)?)\*(?![\w*])", r"\1", text)


class _PlainHelp:
    """Mixin for any argparse help formatter: markup-free text."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain(text))  # type: ignore[misc]

    def _expand_help(self, action: argparse.Action) -> str:
        return plain(super()._expand_help(action))  # type: ignore[misc]


_FORMATTERS: dict[type, type] = {}


def _plain_formatter(base: type) -> type:
    if base not in _FORMATTERS:
        _FORMATTERS[base] = type(f"Plain{base.__name__}", (_PlainHelp, base), {})
    return _FORMATTERS[base]


class Parser(argparse.ArgumentParser):
    """An argument parser whose help is markup-free and whose usage errors are one line."""

    def __init__(self, *args, formatter_class: type = argparse.HelpFormatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=_plain_formatter(formatter_class), **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {plain(message)}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    from mipa import __version__

    parser = Parser(prog="mipa", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"mipa {__version__}",
                        help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands",
                                       help="one of the commands below; mipa COMMAND --help shows its options",
                                       parser_class=Parser)
    for module_path in COMMAND_MODULES:
        importlib.import_module(module_path).register(subparsers)
    return parser


def _missing_warehouse(args: argparse.Namespace) -> str | None:
    """A one-line error when a command that reads a built warehouse is given none."""
    if args.command not in READS_WAREHOUSE or not hasattr(args, "db"):
        return None
    from mipa import settings

    return settings.missing_warehouse(Path(args.db or settings.db_path()), args.command)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        hint = " (dbt's own arguments go after --: mipa build -- --select MODEL)" if args.command == "build" else ""
        print(f"mipa {args.command}: unrecognized arguments: {' '.join(unknown)}{hint}; see mipa {args.command} --help",
              file=sys.stderr)
        return 2
    problem = _missing_warehouse(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"mipa {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
