"""Differential privacy for what an operator sends: the Gaussian mechanism and its zCDP accountant.

A DSO applies the mechanism to its own replies (``dso.subspace.DsoSubspace(privacy=...)``), so the same
noise protects it embedded and as a service; the orchestrator only counts the releases it received.
"""

from core.privacy.accountant import Accountant, epsilon_from_rho, rho_from_epsilon
from core.privacy.mechanism import GaussianMechanism, PrivacyBudgetError, PrivacyConfig, Release

__all__ = ["Accountant", "GaussianMechanism", "PrivacyBudgetError", "PrivacyConfig", "Release", "epsilon_from_rho",
           "rho_from_epsilon"]
