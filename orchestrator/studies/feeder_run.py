"""One feeder dispatched by its DSO alone in one study scenario (shared by the scheduled-charging study and
the no-show re-dispatch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ScenarioRun:
    name: str
    inputs: Any  # dso.model.FeederInputs
    dispatch: Any  # dso.model.FeederDispatch
    report: Any  # dso.report.FeederReport
    ev_unmet_kwh: np.ndarray  # (n_evs,) per EV, from the per-EV schedules
    solve_s: float
