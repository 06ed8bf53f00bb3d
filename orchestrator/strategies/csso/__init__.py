"""Concurrent Subspace Optimization: the loop, the ICNN response surfaces, the system coordination."""

from orchestrator.strategies.csso.strategy import Csso

__all__ = ["Csso"]
