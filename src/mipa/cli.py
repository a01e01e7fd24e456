"""Command-line entry point: ``mipa <command>``.

Each command lives in its own module and registers itself here, so the CLI stays a
thin dispatcher.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def build_parser() -> argparse.ArgumentParser:
    from mipa import __version__

    parser = argparse.ArgumentParser(
        prog="mipa",
        description="Build the return-cooperation warehouse from the DTenV feeds and estimate the migration "
                    "partnerships' effects (staggered difference-in-differences). Start with `mipa run`.",
    )
    parser.add_argument("--version", action="version", version=f"mipa {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_path in COMMAND_MODULES:
        importlib.import_module(module_path).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
