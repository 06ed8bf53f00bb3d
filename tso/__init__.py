"""Transmission system operator: network data, DC OPF with losses, and its boundary problem."""

from core.errors import SolveError
from tso.model import TsoDispatch, TsoInputs, TsoModel, build_tso_model, marginal_loss_factors
from tso.network import (
    TransmissionData,
    TransmissionDataError,
    ieee30,
    ieee118,
    transmission_from_pandapower,
)
from tso.problem import TsoProblem, TsoSolution

__all__ = [
    "SolveError",
    "TransmissionData",
    "TransmissionDataError",
    "TsoDispatch",
    "TsoInputs",
    "TsoModel",
    "TsoProblem",
    "TsoSolution",
    "build_tso_model",
    "ieee30",
    "ieee118",
    "marginal_loss_factors",
    "transmission_from_pandapower",
]
