"""The DSO's planning problems: storage siting and sizing (``storage``), its scenarios (``scenarios``,
K-medoids over a year of profiles) and the Benders decomposition that solves it (``benders``)."""
