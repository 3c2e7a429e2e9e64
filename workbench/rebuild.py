"""The study, system and networks of a results file, rebuilt from the study it records.

Results hold no network data (no geometry, impedances or DER ratings): figures that need
them (network maps, P-Q regions at the feeder interfaces) rebuild them from the study in
``attrs["study_config_yaml"]``. Networks given from Python as pandapower objects, and
JSON files, are kept in the results as pandapower JSON (``study_networks_json``); results
written before that record such a network by its label only (``<pandapower net: N
buses>``) and it cannot be rebuilt; nor can a JSON network file that has moved.
:class:`RebuildError` says which and why, in one line.
"""

from __future__ import annotations

import warnings

import pandapower as pp
import xarray as xr

from cases.errors import CaseError, StudyConfigError
from cases.networks import load_network, merge_parallel_branches, network_label
from cases.study import StudyConfig
from cases.substations import substation_nets
from cases.system import IntegratedSystem, build_system
from workbench.results import OutputError

__all__ = ["RebuildError", "results_network", "results_study", "results_system"]

#: how a network given from Python as an object appears in a study's YAML dump
_OBJECT_LABEL = "<pandapower net"


class RebuildError(OutputError):
    """A study, system or network that cannot be rebuilt from a results file."""


def results_study(ds: xr.Dataset) -> StudyConfig:
    """The study a results file was written for, with the networks the results keep as
    pandapower JSON (:meth:`cases.study.StudyConfig.from_results`).

    Raises
    ------
    RebuildError
        No study in the attributes, or one this version cannot read.
    """
    if not ds.attrs.get("study_config_yaml"):
        raise RebuildError(
            "the results carry no study configuration (attribute 'study_config_yaml'); "
            "they were not written by `workbench run`"
        )
    try:
        return StudyConfig.from_results(ds)
    except StudyConfigError as exc:
        raise RebuildError(f"the results' study cannot be read by this version: {exc}") from None


def _is_label(spec) -> bool:
    """Whether a network spec is only the label of a net object (older results)."""
    return isinstance(spec, str) and spec.startswith(_OBJECT_LABEL)


def _load(spec, what: str) -> pp.pandapowerNet:
    label = network_label(spec)
    if _is_label(spec):
        raise RebuildError(
            f"{what} network {label} was given from Python as a pandapower object and "
            "these results keep only its name (results of this version keep the network); "
            "run the study again to draw it"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_network(spec)
    except CaseError as exc:
        raise RebuildError(f"{what} network '{label}' cannot be rebuilt: {exc}") from None


def results_network(ds: xr.Dataset, network: str) -> pp.pandapowerNet:
    """One network of a results file's study, as the results name its elements.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    network : str
        ``transmission`` or a feeder's name. A feeder's parallel branches are merged as
        in the run, so its ``line`` / ``trafo`` indices are those of the results'
        ``branch`` names; its loads are not scaled (only the topology is of use).

    Raises
    ------
    RebuildError
        Unknown feeder, or a network that cannot be loaded again.
    """
    study = results_study(ds)
    if network == "transmission":
        return _load(study.transmission.network, "transmission")
    feeders = {f.name: f for f in study.feeders}
    # a network with several substations makes one feeder <name>.<ext_grid> per part
    entry, _, part = network.rpartition(".")
    if network not in feeders and entry in feeders and part.isdigit():
        net = merge_parallel_branches(_load(feeders[entry].network, f"feeder '{entry}'"))
        try:
            ((_, sub),) = substation_nets(net, f"feeder '{entry}'", int(part))
        except CaseError as exc:
            raise RebuildError(f"feeder '{network}' cannot be rebuilt: {exc}") from None
        return sub
    if network not in feeders:
        raise RebuildError(
            f"network '{network}' is not in the results' study; choose transmission or "
            f"a feeder: {', '.join(feeders)}"
        )
    net = merge_parallel_branches(_load(feeders[network].network, f"feeder '{network}'"))
    if feeders[network].substation is None:
        return net
    try:
        ((_, sub),) = substation_nets(net, f"feeder '{network}'", feeders[network].substation)
    except CaseError as exc:
        raise RebuildError(f"feeder '{network}' cannot be rebuilt: {exc}") from None
    return sub


def results_system(ds: xr.Dataset) -> IntegratedSystem:
    """The integrated system (networks, feeder arrays, DER fleet) of a results file.

    Raises
    ------
    RebuildError
        A network of the study cannot be loaded again.
    """
    study = results_study(ds)
    for what, spec in [("transmission", study.transmission.network)] + [
        (f"feeder '{f.name}'", f.network) for f in study.feeders
    ]:
        if _is_label(spec):
            _load(spec, what)  # raises with the reason
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build_system(study)
    except CaseError as exc:
        raise RebuildError(f"the results' system cannot be rebuilt: {exc}") from None
