"""Bundled profiles: shapes, normalisation, and (when simbench is installed) the extraction itself."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from core.data.extract_profiles import OUT, YEAR_OUT, extract, extract_year
from core.profiles import profile, profile_names, year_profile


def test_profiles_are_normalised() -> None:
    for name in profile_names():
        q = profile(name, 0.25)
        assert q.shape == (96,) and np.all(q >= 0) and np.all(np.isfinite(q))
        if name.startswith("load_"):
            assert q.max() == pytest.approx(1.0)  # the day's peak is the IEEE base load
        else:
            assert q.max() <= 1.0  # capacity factors
    pv = profile("pv_pv3", 1.0)
    assert pv[:5].max() == 0.0 and pv[11] > 0.5  # no sun at night, strong at noon


def test_hourly_is_mean_of_quarter_hours() -> None:
    q = profile("load_mv_urban", 0.25)
    h = profile("load_mv_urban", 1.0)
    np.testing.assert_allclose(h, q.reshape(24, 4).mean(axis=1))
    with pytest.raises(ValueError, match="multiple"):
        profile("load_mv_urban", 0.3)


@pytest.mark.skipif(importlib.util.find_spec("simbench") is None, reason="simbench not installed (gridcoord[data])")
def test_bundled_file_matches_simbench() -> None:
    assert extract() == OUT.read_text()
    assert extract_year() == YEAR_OUT.read_text()


def test_year_profiles_hold_the_day_file() -> None:
    """The year file is the same SimBench series: its day 160 is the day file's shape (up to the
    normalisation: the day file divides loads by the day's peak, the year file by the year's)."""
    for name in profile_names():
        year = year_profile(name)
        assert year.shape == (366, 24) and np.all(year >= 0) and year.max() == pytest.approx(1.0)
        day = profile(name, 1.0)
        scale = year[160].max() / day.max() if day.max() > 0 else 0.0
        np.testing.assert_allclose(year[160], scale * day, atol=2e-6)  # both files round to 1e-6
    with pytest.raises(KeyError, match="unknown year profile"):
        year_profile("nope")


def test_ev_year_profiles() -> None:
    """The EV charging-point year (PROVENANCE.md): two columns, 366 days, normalised to the annual peak."""
    from core.profiles import year_profile_names

    assert {"ev_home", "ev_work"} <= set(year_profile_names())
    for name in ("ev_home", "ev_work"):
        y = year_profile(name)
        assert y.shape == (366, 24) and y.min() >= 0 and y.max() == pytest.approx(1.0)
    assert year_profile("ev_home")[:, 18:22].mean() > year_profile("ev_home")[:, 3:6].mean()  # evening charging


@pytest.mark.skipif(importlib.util.find_spec("simbench") is None, reason="simbench not installed (gridcoord[data])")
def test_ev_file_matches_simbench() -> None:
    from core.data import extract_ev_profiles

    assert extract_ev_profiles.extract() == extract_ev_profiles.OUT.read_text()
