"""Errors shared by the TSO modules."""

from __future__ import annotations


class SolveError(RuntimeError):
    """A solve ended infeasible, unbounded or inaccurate; ``status`` is the solver's status string."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(f"{message} (status: {status})")
        self.status = status
