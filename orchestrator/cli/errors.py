"""Which exceptions are user-facing (one-line message, non-zero exit) and with which exit code."""

from __future__ import annotations

#: exit 2: the input is wrong (case file, CLI argument, fleet data); exit 3: an optimisation failed;
#: exit 4: an operator (service or subspace actor) failed or did not answer.
EXIT_BAD_INPUT = 2
EXIT_SOLVE_FAILED = 3
EXIT_OPERATOR_FAILED = 4


def exit_code_for(exc: BaseException) -> int | None:
    """Exit code for an expected error, or None for a bug (which keeps its traceback)."""
    from core.errors import SolveError
    from core.rpc import OperatorUnavailable, RemoteError
    from orchestrator.runtime.executors import SubspaceCallError

    if isinstance(exc, SolveError):
        return EXIT_SOLVE_FAILED
    if isinstance(exc, OperatorUnavailable | RemoteError | SubspaceCallError | TimeoutError):
        return EXIT_OPERATOR_FAILED
    if isinstance(exc, ValueError | FileNotFoundError | KeyError):
        return EXIT_BAD_INPUT
    return None
