"""Benchmarks (``gridcoord bench ...``): they print comparable figures measured in one run; none is a test."""
