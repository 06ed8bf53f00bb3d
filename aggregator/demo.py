"""The stand-alone aggregator's illustrative setting (``gridcoord aggregate`` and the aggregator benchmark):
three charging stations on an IEEE 33-bus feeder and a time-of-use tariff."""

from __future__ import annotations

import numpy as np

from aggregator.fleet import Station

#: stations at Baran & Wu nodes 5, 18 and 30, 800 kW connections each
STATIONS = (Station("cs-a", 5, 800.0), Station("cs-b", 18, 800.0), Station("cs-c", 30, 800.0))
#: illustrative time-of-use tariff [$/MWh]: night valley, day shoulder, 17-21 h peak
TOU_USD_PER_MWH = np.array([40.0] * 7 + [60.0] * 10 + [110.0] * 4 + [60.0] * 3)
