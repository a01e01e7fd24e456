"""Where things are: every path is resolved from environment variables, never from the
working directory, so commands behave the same wherever they are started."""

from __future__ import annotations

import os
from pathlib import Path


def project_dir() -> Path:
    """The dbt project: env ``MIPA_PROJECT_DIR``, else the checkout this package lives in."""
    env = os.environ.get("MIPA_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "dbt_project.yml").exists():
            return parent
    raise RuntimeError(
        "cannot find the dbt project (dbt_project.yml): set MIPA_PROJECT_DIR to the mipa checkout"
    )


def raw_dir() -> Path:
    """Raw feeds: env ``MIPA_RAW_DIR``, default ``<project>/data/raw``."""
    env = os.environ.get("MIPA_RAW_DIR")
    return Path(env).resolve() if env else project_dir() / "data" / "raw"


def db_path() -> Path:
    """The warehouse: env ``MIPA_DB_PATH``, default ``<project>/data/mipa.duckdb``."""
    env = os.environ.get("MIPA_DB_PATH")
    return Path(env).resolve() if env else project_dir() / "data" / "mipa.duckdb"


def missing_warehouse(db: Path, command: str) -> str | None:
    """The one-line error of ``mipa <command>`` when the warehouse ``db`` it reads is not a
    built database file, or None when it is."""
    if db.is_file():
        return None
    what = "is not a file" if db.exists() else "does not exist"
    return f"mipa {command}: database {db} {what}; build it with mipa build (or mipa run), or point --db at a built warehouse"
