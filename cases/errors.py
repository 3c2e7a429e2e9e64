"""Error types of the case layer: every message says what is wrong and how to fix it."""

from __future__ import annotations


class CaseError(ValueError):
    """A network, feeder or DER fleet that cannot be used as given."""


class StudyConfigError(ValueError):
    """A study definition (YAML) with a wrong, missing or unknown key."""
