"""Scenario generation for PV, load and wind."""

from forecasts.scenarios import RESOURCES, ScenarioError, generate_scenarios, hourly

__all__ = ["RESOURCES", "ScenarioError", "generate_scenarios", "hourly"]
