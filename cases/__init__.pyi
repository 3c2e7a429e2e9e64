# The public names of `cases`: type checkers read them here, and `__init__.py`
# imports each on first use from this list (lazy_loader.attach_stub).
from .der import DerFleet
from .errors import CaseError, StudyConfigError
from .feeders import FeederArrays, feeder_arrays, scale_feeder
from .networks import (
    builtin_case_names,
    check_radial,
    load_network,
    merge_parallel_branches,
)
from .profiles import day_profiles, load_profiles
from .simbench import network_profiles, simbench_codes
from .study import StudyConfig, builtin_studies, load_study, parse_study
from .system import Feeder, IntegratedNet, IntegratedSystem, build_system
from .transmission import TransmissionArrays, transmission_arrays

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
