"""Solver statuses as the results record them (no heavy imports: read by every command)."""

from __future__ import annotations

__all__ = ["SOLVED_STATUSES"]

#: statuses of a solve whose solution is loaded and reported: ``optimal``, or ``limit`` (a
#: MIP stopped at its time limit with its best solution; its gap in ``solver_mip_gap``)
SOLVED_STATUSES = ("optimal", "limit")
