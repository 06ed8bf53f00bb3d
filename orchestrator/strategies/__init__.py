"""Coordination strategies behind one interface (``Strategy.run(system, options) -> RunResult``)."""

from __future__ import annotations

from typing import Any

from orchestrator.strategies.admm import Admm
from orchestrator.strategies.base import RunOptions, RunResult, Strategy
from orchestrator.strategies.centralized import Centralized
from orchestrator.strategies.csso import Csso
from orchestrator.strategies.gradient import Dual, Gradient
from orchestrator.strategies.isolated import Isolated

STRATEGIES: dict[str, type[Strategy[Any]]] = {cls.name: cls for cls in (Isolated, Centralized, Csso, Admm,
                                                                        Gradient, Dual)}


def get_strategy(name: str) -> Strategy[Any]:
    """The strategy called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})") from None


__all__ = ["RunOptions", "RunResult", "STRATEGIES", "Strategy", "get_strategy"]
