"""The strategy interface every coordination method implements, and what a run returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from dso.model import FeederDispatch
from orchestrator.system import System
from tso.model import TsoDispatch


@dataclass
class Counters:
    """What a wide-area deployment pays for. A *round* is one send-to-all-and-gather exchange."""

    rounds: int = 0
    subspace_solves: int = 0
    messages: int = 0
    bytes: int = 0

    def exchange(self, n_messages: int, n_bytes: int) -> None:
        self.messages += n_messages
        self.bytes += n_bytes


@dataclass(frozen=True)
class RunOptions:
    """Options shared by all strategies (later strategies add their own fields with defaults)."""

    solver: str = "CLARABEL"
    ray_address: str | None = None
    services_file: str | None = None
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """A strategy's final dispatch, before metrics are computed from it (``orchestrator.results``)."""

    strategy: str
    tso: TsoDispatch
    feeders: dict[str, FeederDispatch]
    #: the price each DSO pays for its import, $/MWh, (T,) per DSO
    boundary_price_usd_per_mwh: dict[str, np.ndarray]
    counters: Counters
    converged: bool
    wall_s: float = 0.0
    nodes: list[str] = field(default_factory=list)
    #: EV schedules were flexible (envelopes) or uncontrolled (charge on arrival)
    ev_controlled: bool = True
    convergence: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: operator id -> Ray node id of the actor that ran its subspace ("local" in-process)
    placement: dict[str, str] = field(default_factory=dict)


class Strategy(ABC):
    """A coordination method: turns a ``System`` into a ``RunResult``."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, system: System, options: RunOptions) -> RunResult:
        """Coordinate the operators of ``system`` and return the final dispatch."""


def array_bytes(*arrays: np.ndarray) -> int:
    """Wire size of plain float64 arrays (what a message carrying them costs, without framing)."""
    return int(sum(np.asarray(a, dtype=float).size * 8 for a in arrays))
