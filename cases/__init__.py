"""Test systems: transmission cases, radial feeders, DER fleets and study definitions."""

from cases.der import DerFleet
from cases.errors import CaseError, StudyConfigError
from cases.feeders import FeederArrays, feeder_arrays, scale_feeder
from cases.networks import (
    builtin_case_names,
    check_radial,
    load_network,
    merge_parallel_branches,
)
from cases.profiles import day_profiles, load_profiles
from cases.simbench import network_profiles, simbench_codes
from cases.study import StudyConfig, builtin_studies, load_study, parse_study
from cases.system import Feeder, IntegratedNet, IntegratedSystem, build_system
from cases.transmission import TransmissionArrays, transmission_arrays

__all__ = [
    "CaseError",
    "DerFleet",
    "Feeder",
    "FeederArrays",
    "IntegratedNet",
    "IntegratedSystem",
    "StudyConfig",
    "StudyConfigError",
    "TransmissionArrays",
    "build_system",
    "builtin_case_names",
    "builtin_studies",
    "check_radial",
    "day_profiles",
    "feeder_arrays",
    "load_network",
    "load_profiles",
    "load_study",
    "merge_parallel_branches",
    "network_profiles",
    "parse_study",
    "scale_feeder",
    "simbench_codes",
    "transmission_arrays",
]
