"""A run's metrics and files (the run contract), its plots, and side-by-side comparison of runs."""
