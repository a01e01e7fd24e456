"""One dbt process per build: it parses the project while the feeds load, then runs the
build and the source-freshness check on that one parsed manifest (dbt's programmatic
``dbtRunner``). Why: a parse, a build and a freshness process each paid dbt's start-up and
manifest load, ~2 s apiece on ``mipa run``'s critical path.

Protocol (``python -m mipa.dbt_session PROJECT [--vars VARS]``, environment as
:func:`mipa.build.dbt_env`): the process parses, then reads one JSON line on stdin,
``{"build": [dbt build arguments], "freshness_output": path or null}``; end of input
instead stops it after the parse. Its exit code is dbt build's (0 ok, 1 a model or test
failed, 2 dbt could not run); the freshness results go to ``freshness_output`` only after a
successful build.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# the write end of a pipe from the build, closed once the parse is done: the build's load
# then knows the core the parse used is free (mipa.build.parse_finished)
PARSED_FD_VARIABLE = "MIPA_PARSED_FD"


def _code(result: Any) -> int:
    """dbt's exit code for an invocation: 0 success, 1 failures in the run, 2 an error."""
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def main(argv: list[str] | None = None) -> int:
    from dbt.cli.main import dbtRunner

    args = list(sys.argv[1:] if argv is None else argv)
    project, vars_args = args[0], args[1:]
    where = ["--project-dir", project, "--profiles-dir", project]
    parsed = dbtRunner().invoke(["--quiet", "parse", *vars_args, *where])
    signal = os.environ.pop(PARSED_FD_VARIABLE, "")
    if signal.isdigit():
        try:
            os.close(int(signal))
        except OSError:
            pass  # not passed to this process (run by hand)
    line = sys.stdin.readline()
    if not line.strip():
        return _code(parsed)
    request = json.loads(line)
    # without a parsed manifest (a project error) the build parses again and reports it
    runner = dbtRunner(manifest=parsed.result) if parsed.success else dbtRunner()
    code = _code(runner.invoke(["build", *request["build"], *where]))
    out = request.get("freshness_output")
    if code == 0 and out:
        runner.invoke(["--quiet", "source", "freshness", *vars_args, "--output", out, *where])
    return code


if __name__ == "__main__":
    sys.exit(main())
