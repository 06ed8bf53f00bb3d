"""Errors every operator and the orchestrator share.

Input errors stay with the data they describe (``CaseError``, ``FeederInputError``, ``TransmissionDataError``,
``FleetError``: all ``ValueError``, all naming the element and the value); a solve that ends without an
optimum is the same failure wherever it happens, so it has one class.
"""

from __future__ import annotations


class SolveError(RuntimeError):
    """A solve ended infeasible, unbounded or inaccurate; ``status`` is the solver's status string."""

    def __init__(self, message: str, status: str | None) -> None:
        super().__init__(f"{message} (status: {status})")
        self.status = status
