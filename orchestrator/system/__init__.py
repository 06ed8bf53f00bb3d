"""The coordinated system as a strategy sees it, one interface for both ways of running the operators:

- ``embedded.EmbeddedSystem``: every operator's data in this process (the default; the subspaces still
  run each on its own Ray actor). It also offers the private data, which only ``isolated`` and
  ``centralized`` (the baselines that need one all-knowing planner) use.
- ``services.ServicesSystem``: the operators run as gRPC services; this process holds only the case's
  public structure and the services' addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core.case import CaseSpec
from orchestrator.runtime.executors import Factory


@dataclass(frozen=True)
class SubspaceSet:
    """How to build the subspaces on their hosts: ``factories[i]`` builds subspace i (0 = TSO, 1 + k = DSO k)
    from its args, where ``Shared(j)`` stands for ``shared[j]`` (``ray.put`` once)."""

    factories: list[Factory]
    names: list[str]
    shared: list[object] = field(default_factory=list)
    #: the subspaces only call services that do the work elsewhere (gRPC stubs): the Ray executor gives each
    #: its own actor and does not hold calls back to the node's CPUs
    remote: bool = False


class CoordinatedSystem(Protocol):
    """What every iterative strategy needs of a system, whichever way its operators run."""

    @property
    def spec(self) -> CaseSpec: ...

    @property
    def mode(self) -> str:
        """"embedded" or "services"."""
        ...

    def subspaces(self, solver: str, ac_check: bool) -> SubspaceSet:
        """The TSO and DSO subspaces (``solver`` and ``ac_check`` apply where this process builds them)."""
        ...

    def forecast_mw(self) -> np.ndarray:
        """The DSOs' naive day-ahead import forecasts (K*T,) [MW]: every iterative strategy starts there."""
        ...
