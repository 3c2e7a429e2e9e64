"""A study as text that holds all it needs to run again: its YAML and its networks.

A study's YAML names most networks (``case39``, ``cigre_mv``, a SimBench code), which the
installed packages give back. Two kinds it cannot name: a ``pandapowerNet`` given from
Python (the YAML shows only its label, ``<pandapower net 'case9': 9 buses>``) and a
pandapower JSON file, which may change or disappear after the run. Both are kept as
pandapower JSON beside the YAML: in the results' attributes (``study_networks_json``) and in
the run folder, so that :meth:`cases.study.StudyConfig.from_results` and ``workbench run
--resume`` run the same study again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandapower as pp
from pandapower.auxiliary import pandapowerNet

from cases.errors import StudyConfigError
from cases.study import StudyConfig, parse_study, read_study_yaml

__all__ = [
    "NETWORKS_ATTR",
    "STUDY_ATTR",
    "embedded_networks",
    "restore_study",
    "study_archive",
]

#: attribute (results) / manifest key (run folder) of the study's YAML
STUDY_ATTR = "study_config_yaml"
#: attribute of the networks the YAML cannot name: JSON ``{slot: pandapower JSON}``
NETWORKS_ATTR = "study_networks_json"


def _slots(study: StudyConfig) -> dict[str, Any]:
    """The study's network specs by slot: ``transmission``, ``feeders.<i>``."""
    out: dict[str, Any] = {"transmission": study.transmission.network}
    out.update({f"feeders.{i}": f.network for i, f in enumerate(study.feeders)})
    return out


def _is_json_file(spec: Any) -> bool:
    return isinstance(spec, str) and spec.lower().endswith(".json")


def embedded_networks(study: StudyConfig) -> dict[str, str]:
    """pandapower JSON of every network of ``study`` that its YAML cannot name.

    Parameters
    ----------
    study : StudyConfig

    Returns
    -------
    dict
        ``{slot: pandapower JSON text}`` for net objects and JSON files (slots as in
        ``transmission``, ``feeders.0``); empty when every network is a built-in name or a
        SimBench code.

    Raises
    ------
    StudyConfigError
        When a network file named by the study cannot be read.
    """
    out = {}
    for slot, spec in _slots(study).items():
        if isinstance(spec, pandapowerNet):
            out[slot] = pp.to_json(spec)
        elif _is_json_file(spec):
            try:
                out[slot] = Path(spec).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise StudyConfigError(
                    f"{slot}: network file '{spec}' cannot be read ({exc}); give an "
                    "existing pandapower JSON file"
                ) from None
    return out


def study_archive(study: StudyConfig) -> dict[str, str]:
    """The study as text attributes: its YAML and, when it has any, the networks its YAML
    cannot name (:func:`embedded_networks`, as one JSON text)."""
    from yaml import safe_dump

    out = {STUDY_ATTR: safe_dump(study.model_dump(mode="json"), sort_keys=False)}
    nets = embedded_networks(study)
    if nets:
        out[NETWORKS_ATTR] = json.dumps(nets)
    return out


def restore_study(yaml_text: str, networks_json: str | None, source: str) -> StudyConfig:
    """The study of :func:`study_archive` again.

    A network kept as JSON becomes a ``pandapowerNet`` again, except a JSON file that
    still holds the same text, which stays named by its path.

    Parameters
    ----------
    yaml_text : str
        The study's YAML (``study_config_yaml``).
    networks_json : str or None
        The kept networks (``study_networks_json``), if any.
    source : str
        Where the text comes from, for error messages.

    Raises
    ------
    StudyConfigError
        When the text is no study of this workbench, or a network cannot be read back.
    """
    try:
        data = read_study_yaml(yaml_text)
        nets = json.loads(networks_json) if networks_json else {}
    except ValueError as exc:  # yaml.YAMLError and json.JSONDecodeError
        raise StudyConfigError(f"{source}: the stored study cannot be read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(nets, dict):
        raise StudyConfigError(f"{source}: the stored study is not a study mapping")
    for slot, text in nets.items():
        section, _, index = slot.partition(".")
        try:
            node = data[section] if not index else data[section][int(index)]
        except (KeyError, IndexError, ValueError, TypeError):
            raise StudyConfigError(
                f"{source}: a kept network belongs to '{slot}', which the study lacks"
            ) from None
        spec = node.get("network") if isinstance(node, dict) else None
        if _is_json_file(spec) and _same_text(Path(spec), text):
            continue
        try:
            node["network"] = pp.from_json_string(text)
        except Exception as exc:  # pandapower raises many kinds for a bad JSON text
            raise StudyConfigError(
                f"{source}: the network kept for '{slot}' cannot be read back ({exc})"
            ) from None
    return parse_study(data, source)


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False
