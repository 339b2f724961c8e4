"""The one base class of every error the tool knows how to explain.

A ForgetbenchError carries a one-line message (naming the file, entry or field) and the process exit code.
The command line catches this class, and only this class, in one place (harness/cli.py): every known error
is one line and exit 2 in every command; anything else is a bug and keeps its traceback.

    python -c "from harness.errors import ForgetbenchError; print(ForgetbenchError.exit_code)"
"""

from __future__ import annotations


class ForgetbenchError(Exception):
    """A known, explainable failure: bad input, unreadable data, a refused comparison."""

    exit_code: int = 2
