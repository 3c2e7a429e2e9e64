"""TSO-DSO coordination models: one module per model, one registry of names.

Each model reads like its paragraph in the review it implements (Givisiez, Petrou,
Ochoa 2020): a short sequence of solves over the blocks of :mod:`stochastic.blocks`,
with the numbers exchanged between TSO, DSO and DER counted on the way. A model
provides ``schedule_days(system, study, days, seed, forecaster, threads)``, returning one
:class:`DayOutcome` per day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cases.study import COORDINATION_MODELS
from workbench.coordination import dso_managed, hybrid, tso_managed
from workbench.coordination.common import DayOutcome

__all__ = ["MODELS", "CoordinationModel", "DayOutcome", "coordination_model"]


@dataclass(frozen=True)
class CoordinationModel:
    """A coordination model by name.

    Attributes
    ----------
    name : str
    description : str
    schedule_days : callable
        ``(system, study, days, seed, forecaster=None, threads=1) -> list[DayOutcome]``.
    """

    name: str
    description: str
    schedule_days: Callable[..., list[DayOutcome]]


MODELS: dict[str, CoordinationModel] = {
    "tso_managed": CoordinationModel(
        "tso_managed",
        "TSO-managed: one centralised two-stage problem with transmission and every feeder",
        tso_managed.schedule_days,
    ),
    "hybrid": CoordinationModel(
        "hybrid",
        "TSO-DSO hybrid: DSOs validate the DER bids after they reach the TSO, the TSO "
        "dispatches them with its transmission-only view",
        hybrid.schedule_days,
    ),
    "hybrid:prevalidation": CoordinationModel(
        "hybrid:prevalidation",
        "TSO-DSO hybrid with pre-validation: DSOs publish limits before the DER bid",
        partial(hybrid.schedule_days, variant="prevalidation"),
    ),
    "dso_managed": CoordinationModel(
        "dso_managed",
        "DSO-managed: DSOs aggregate their DER into offers at the interfaces, the TSO "
        "dispatches the offers, the DSOs disaggregate the set-points",
        dso_managed.schedule_days,
    ),
    "dso_managed:local_market": CoordinationModel(
        "dso_managed:local_market",
        "DSO-managed with a local market: each DSO first buys what its own network needs, "
        "then offers the remainder",
        partial(dso_managed.schedule_days, variant="local_market"),
    ),
    "dso_managed:target": CoordinationModel(
        "dso_managed:target",
        "DSO-managed with interface targets: the TSO sets each interface's import without "
        "the network's ranges, the DSO meets it as far as its network allows",
        partial(dso_managed.schedule_days, variant="target"),
    ),
}

if tuple(MODELS) != tuple(COORDINATION_MODELS):  # the study file accepts exactly these names
    raise ImportError(
        f"coordination models {tuple(MODELS)} differ from cases.study "
        f"COORDINATION_MODELS {COORDINATION_MODELS}"
    )


def coordination_model(name: str) -> CoordinationModel:
    """The coordination model called ``name``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if name not in MODELS:
        raise ValueError(f"unknown coordination model '{name}'; available: {', '.join(MODELS)}")
    return MODELS[name]
