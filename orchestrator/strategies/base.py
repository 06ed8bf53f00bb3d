"""The strategy interface every coordination method implements, and what a run returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from core.traffic import Traffic
from dso.report import FeederReport
from tso.report import TsoReport

#: the kind of system a strategy works on (``orchestrator.system.CoordinatedSystem``, or the embedded
#: system for the baselines that need every operator's private data)
S = TypeVar("S", contravariant=True)


@dataclass(frozen=True)
class RunOptions:
    """Options shared by all strategies (strategy-specific ones go in ``extra``)."""

    solver: str = "CLARABEL"
    ray_address: str | None = None
    services_file: str | None = None
    progress: bool = True
    #: operators built in this process run the pandapower AC check in their report (services decide for themselves)
    ac_check: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a strategy ends with: the operators' published reports at the final boundary, the prices
    each DSO pays, and what the coordination cost. ``orchestrator.results`` computes the metrics from it."""

    strategy: str
    tso: TsoReport
    feeders: dict[str, FeederReport]
    #: the price each DSO pays for its import, $/MWh, (T,) per DSO
    boundary_price_usd_per_mwh: dict[str, np.ndarray]
    traffic: Traffic
    converged: bool
    #: coordination wall time [s] (the final reporting round, with its AC checks, is ``report_s``)
    wall_s: float = 0.0
    report_s: float = 0.0
    #: starting the subspaces before coordination [s] (Ray actors or service connections, each operator
    #: building its model); not part of ``wall_s``
    startup_s: float = 0.0
    nodes: list[str] = field(default_factory=list)
    #: EV schedules were flexible (envelopes) or uncontrolled (charge on arrival)
    ev_controlled: bool = True
    convergence: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: operator id -> Ray node id of the actor that ran its subspace ("local" in-process)
    placement: dict[str, str] = field(default_factory=dict)
    #: DP mode: mechanism, composition, releases per DSO and ``epsilon_total`` (``iterative.privacy_accounting``)
    privacy: dict[str, Any] = field(default_factory=dict)


class Strategy(ABC, Generic[S]):
    """A coordination method: turns a system into a ``RunResult``."""

    name: ClassVar[str]
    #: needs every operator's private data in one process (``isolated``, ``centralized``): embedded only
    private_data: ClassVar[bool] = False
    #: the RPCs (``protos/``: TsoService, DsoService) the strategy's messages are, per role: the threat model
    #: (``orchestrator.studies.privacy_threat``) is generated from these and the proto descriptors, and
    #: ``tests/test_privacy.py`` checks them against the calls of a recorded run
    rpcs: ClassVar[dict[str, tuple[str, ...]]] = {}

    @abstractmethod
    def run(self, system: S, options: RunOptions) -> RunResult:
        """Coordinate the operators of ``system`` and return the final reports."""


def array_bytes(*arrays: np.ndarray) -> int:
    """Wire size of plain float64 arrays (what a message carrying them costs, without framing)."""
    return int(sum(np.asarray(a, dtype=float).size * 8 for a in arrays))
