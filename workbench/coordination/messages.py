"""Typed messages between TSO, DSO and DER, and the per-day ledger of them.

Every exchange of a coordination model is a :class:`Message`: who sends what to whom,
in which round, and how many numbers it carries. A round is one step of the sequence in
which no actor waits for another (messages of the same round travel in parallel); a
model's day needs as many rounds as its sequence has steps. Payloads are counted as
float64 numbers, 8 bytes each.

Every model writes the same catalogue of message types (:data:`CATALOGUE`), with zero
values and round 0 for the messages it does not send, so that results of several models
share one ``message`` axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["BYTES_PER_VALUE", "CATALOGUE", "KINDS", "Message", "ledger_variables"]

#: size of one exchanged number (a float64) [byte]
BYTES_PER_VALUE = 8

#: what a message can carry
KINDS = (
    "network_data",  # topology, impedances and limits of a feeder
    "forecast",  # demand / PV scenarios at buses or at an interface
    "bids",  # DER energy schedules, up/down volumes and prices
    "validated_limits",  # accepted volumes per DER (hybrid), published or after the bids
    "local_activation",  # the DSO's own use of DER flexibility (local market)
    "flexibility_offer",  # aggregated devices, import ranges and P-Q regions per interface
    "interface_setpoint",  # TSO set-point (or target) of a feeder's import
    "dispatch",  # set-points of individual DER
    "shortfall",  # by how much a DSO missed a set-point
)

#: every (sender, receiver, kind) a model may send, in sequence order
CATALOGUE = (
    ("dso", "tso", "network_data"),
    ("dso", "tso", "forecast"),
    ("dso", "der", "validated_limits"),
    ("der", "tso", "bids"),
    ("der", "dso", "bids"),
    ("tso", "dso", "bids"),
    ("dso", "tso", "validated_limits"),
    ("dso", "der", "local_activation"),
    ("dso", "tso", "flexibility_offer"),
    ("tso", "dso", "interface_setpoint"),
    ("tso", "der", "dispatch"),
    ("tso", "dso", "dispatch"),
    ("dso", "der", "dispatch"),
    ("dso", "tso", "shortfall"),
)


def _key(sender: str, receiver: str, kind: str) -> str:
    return f"{sender}->{receiver}:{kind}"


@dataclass(frozen=True)
class Message:
    """One typed message of a day's exchange.

    Attributes
    ----------
    sender, receiver : {"tso", "dso", "der"}
    kind : str
        One of :data:`KINDS`.
    values : int
        Numbers carried (all DSOs or all DER together).
    round : int
        Step of the day's sequence (1 is first).
    """

    sender: str
    receiver: str
    kind: str
    values: int
    round: int

    def __post_init__(self) -> None:
        if (self.sender, self.receiver, self.kind) not in CATALOGUE:
            raise ValueError(
                f"message {_key(self.sender, self.receiver, self.kind)} is not in the catalogue"
            )
        if self.values < 0 or self.round < 1:
            raise ValueError("a message carries >= 0 values in a round >= 1")

    @property
    def bytes(self) -> int:
        """Payload size [byte]."""
        return int(self.values) * BYTES_PER_VALUE


def ledger_variables(messages: list[Message]) -> dict[str, xr.DataArray]:
    """A day's messages as result variables on the ``message`` axis of the catalogue.

    ``message_values``, ``message_bytes``, ``message_round`` (0: not sent) and the scalar
    ``exchange_rounds``. Two messages of the same type in one day are summed (their
    round is the first one's).
    """
    index = {entry: i for i, entry in enumerate(CATALOGUE)}
    n = len(CATALOGUE)
    values = np.zeros(n, dtype=np.int64)
    rounds = np.zeros(n, dtype=np.int64)
    for m in messages:
        i = index[(m.sender, m.receiver, m.kind)]
        values[i] += int(m.values)
        rounds[i] = rounds[i] or int(m.round)
    coords = {
        "message": [_key(*entry) for entry in CATALOGUE],
        "message_sender": ("message", [e[0] for e in CATALOGUE]),
        "message_receiver": ("message", [e[1] for e in CATALOGUE]),
        "message_kind": ("message", [e[2] for e in CATALOGUE]),
    }

    def var(data, units: str, long_name: str) -> xr.DataArray:
        return xr.DataArray(
            data, dims="message", coords=coords, attrs={"units": units, "long_name": long_name}
        )

    return {
        "message_values": var(values, "1", "numbers carried per day"),
        "message_bytes": var(values * BYTES_PER_VALUE, "byte", "payload per day (float64)"),
        "message_round": var(rounds, "1", "step of the day's sequence (0: not sent)"),
        "exchange_rounds": xr.DataArray(
            int(rounds.max(initial=0)),
            attrs={"units": "1", "long_name": "sequential message rounds per day"},
        ),
    }
