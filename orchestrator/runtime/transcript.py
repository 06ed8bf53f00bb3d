"""The transcript of a run: every call the orchestrator sent to each subspace and every reply, per round.

``RecordingExecutor`` wraps any executor (``options.extra['transcript'] = Transcript()``); the privacy
study cuts it into what each party received (``orchestrator.studies.privacy_attacks``) and the accountant
counts a DSO's releases from it (``releases``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.subspace import Evaluate, Optimize, Prox, Respond
from orchestrator.runtime.executors import Call, Executor, WrappedExecutor


@dataclass(frozen=True)
class Entry:
    round: int
    subspace: int  # 0 = TSO, 1 + k = DSO k
    call: Any  # a core.subspace call object
    reply: Any


@dataclass
class Transcript:
    entries: list[Entry] = field(default_factory=list)
    #: the DSOs' forecasts (K*T,) [MW] as the orchestrator received them (the start point)
    forecast: np.ndarray | None = None

    def of(self, subspace: int) -> list[Entry]:
        return [e for e in self.entries if e.subspace == subspace]

    def releases(self, subspace: int) -> int:
        """Replies of a DSO during coordination (its forecast, each evaluated point, each optimisation, price
        response and ADMM step); the final reports are not counted (they are not coordination messages)."""
        n = 1 if self.forecast is not None else 0
        for e in self.of(subspace):
            if isinstance(e.call, Evaluate):
                n += e.call.solves
            elif isinstance(e.call, Optimize | Respond | Prox):
                n += 1
        return n


class RecordingExecutor(WrappedExecutor):
    """An executor that records every round into a ``Transcript``; everything else is the wrapped one's."""

    def __init__(self, inner: Executor, transcript: Transcript) -> None:
        super().__init__(inner)
        self.transcript = transcript
        self.n = 0

    @property
    def notes(self) -> list[str]:
        return list(getattr(self.inner, "notes", []))

    def round(self, calls: Sequence[Sequence[Call]]) -> list[list[Any]]:
        self.n += 1
        replies = self.inner.round(calls)
        for i, (cs, rs) in enumerate(zip(calls, replies, strict=True)):
            for c, r in zip(cs, rs, strict=True):
                self.transcript.entries.append(Entry(self.n, i, c, r))
        return replies
