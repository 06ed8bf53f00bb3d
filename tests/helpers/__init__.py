"""Test-only code: test problems, doubles of the subspace contract, fixtures' builders, checkers."""
