"""The services file: where each operator of a trial listens (YAML mapping operator id -> ``host:port``).

The orchestrator reads it to reach the operators; an operator reads it to reach its peers (a DSO its
EV aggregator).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")


class ServicesFileError(ValueError):
    """The services file is malformed; the message names the entry."""


def load_services(path: str | Path) -> dict[str, str]:
    """YAML mapping operator id -> ``host:port`` (e.g. ``dso1: 127.0.0.1:50061``)."""
    p = Path(path)
    if not p.is_file():
        raise ServicesFileError(f"services file {str(p)!r} does not exist")
    data = yaml.safe_load(p.read_text())
    if not isinstance(data, dict) or not data:
        raise ServicesFileError(f"{p}: expected a mapping of operator id -> host:port")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not ADDRESS.match(value):
            raise ServicesFileError(f"{p}: {key}: {value!r} is not host:port")
        out[str(key)] = value
    return out


def require(services: dict[str, str], operator_id: str, path: str = "services file") -> str:
    if operator_id not in services:
        raise ServicesFileError(f"{path}: no address for operator {operator_id!r} "
                                f"(listed: {', '.join(sorted(services))})")
    return services[operator_id]
