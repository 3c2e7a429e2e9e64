"""Errors of the forecasting layer."""

from __future__ import annotations

__all__ = ["ForecastError"]


class ForecastError(ValueError):
    """An invalid forecasting request: the message names the field and the allowed values."""
