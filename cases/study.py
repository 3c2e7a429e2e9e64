"""Study definitions: frozen, validated configuration loaded from YAML.

A study file names the test system (transmission case, feeders, DER fleet), the days,
resolutions, scenario set, risk preference, prices and what to check. Unknown keys
are errors, and every error names the key, what was given and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pandapower.auxiliary import pandapowerNet
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cases.errors import StudyConfigError
from cases.networks import network_label

__all__ = [
    "SECOND_STAGE_MINUTES",
    "AcCheckConfig",
    "BatteryFleetConfig",
    "DerConfig",
    "EvFleetConfig",
    "EvaluationConfig",
    "FeederConfig",
    "ForecastConfig",
    "ModelConfig",
    "PricesConfig",
    "PvFleetConfig",
    "ResolutionConfig",
    "RiskConfig",
    "ScenarioConfig",
    "StudyConfig",
    "TransmissionConfig",
    "UserSeriesConfig",
    "builtin_studies",
    "first_stage_choices",
    "load_study",
    "second_stage_choices",
]

#: coordination models and their variants (``model:variant``)
COORDINATION_MODELS = (
    "tso_managed",
    "hybrid",
    "hybrid:prevalidation",
    "dso_managed",
    "dso_managed:local_market",
    "dso_managed:target",
)
#: the models' short names (command line, comparison keys)
MODEL_SHORT_NAMES = {
    "tso_managed": "tso",
    "hybrid": "hybrid",
    "hybrid:prevalidation": "hybrid:prevalidation",
    "dso_managed": "dso",
    "dso_managed:local_market": "dso:local_market",
    "dso_managed:target": "dso:target",
}
#: longest study name [bytes of UTF-8]: the names of its result files, figures and run
#: folder (``<name>_<model>_<day>_<figure>.png``) must fit a file system's 255 bytes
NAME_MAX_BYTES = 120
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
#: a unit's marginal cost [EUR/MWh] (negative: paid to produce)
MarginalCost = Annotated[float, Field(ge=-1e4, le=1e5, allow_inf_nan=False)]
#: a price [EUR/MWh or EUR/(MW h)]: finite, at most 100,000 (ten times a high VOLL); an
#: absurd price makes the LP numerically meaningless
Price = Annotated[float, Field(ge=0.0, le=1e5, allow_inf_nan=False)]


def _network_spec(value: Any) -> str | pandapowerNet:
    if isinstance(value, str | pandapowerNet):
        return value
    raise ValueError(
        f"expected a network name, SimBench code or JSON path (or, from Python, a "
        f"pandapowerNet), got {type(value).__name__}"
    )


#: a network spec (see :func:`cases.networks.load_network`); a pandapowerNet given from
#: Python is written as ``<pandapower net: N buses>`` in the study's YAML dump
NetworkSpec = Annotated[
    str | pandapowerNet,
    PlainValidator(_network_spec),
    # only text dumps (YAML, JSON) name a net object by its label
    PlainSerializer(network_label, return_type=str, when_used="json"),
]


def _takes_bool(annotation: Any) -> bool:
    """Whether a field annotation admits ``True``/``False`` (bool, Any, or a union with it)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(a) for a in getattr(annotation, "__args__", ()) if a is not None)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``n_scenarios: true`` is a mistake, not the number 1 (pydantic's lax mode would
        read a bool as 0 or 1 wherever a number or text is expected)."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and not _takes_bool(field.annotation):
            raise ValueError(
                f"expected a value of its kind (a number, text or a section), got the yes/no "
                f"value {str(value).lower()}"
            )
        return value


class TransmissionConfig(_Frozen):
    """The transmission case: a pandapower built-in name, a JSON file or a pandapowerNet.

    ``technologies`` assigns a technology of ``cases/data/ter_technologies_2016.csv``
    (marginal cost from 2016 fuel and CO2 prices, ramp rate) to units named
    ``<table>/<index>`` (``gen/0``, ``ext_grid/0``); ``marginal_cost_eur_per_mwh``
    overrides a unit's cost. Units left out keep the case's own cost and no ramp limit.
    """

    network: NetworkSpec = "case39"
    technologies: dict[str, str] = Field(default_factory=dict)
    marginal_cost_eur_per_mwh: dict[str, MarginalCost] = Field(default_factory=dict)


class PvFleetConfig(_Frozen):
    """Rooftop / ground PV placed at load buses, sized on the local peak load."""

    kwp_per_kw_load: NonNegFloat = 0.8
    inverter_kva_per_kwp: Annotated[float, Field(ge=1.0, le=2.0)] = 1.1
    buses: Literal["all"] | Annotated[int, Field(ge=0)] = "all"


class BatteryFleetConfig(_Frozen):
    """Batteries at the largest load buses.

    ``soc_init``: state of charge at the start of the study (of every day with
    ``model.storage_state: cyclic``); ``soc_end_min``: least state of charge at the end of
    every day (default: ``soc_init``), so that no day empties the batteries for free.
    """

    kw_per_kw_load: NonNegFloat = 0.3
    hours: PositiveFloat = 2.0
    efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    soc_init: Fraction = 0.5
    soc_end_min: Fraction | None = None
    buses: Annotated[int, Field(ge=0)] = 2

    @property
    def end_fraction(self) -> float:
        """Least state of charge at the end of a day [-]."""
        return self.soc_init if self.soc_end_min is None else self.soc_end_min


class EvFleetConfig(_Frozen):
    """EV charger pools at the largest load buses.

    A pool of rated power ``kw_per_kw_load`` x the bus's peak load holds
    ``pool / charger_kw`` chargers of one ``charger_type``; its charging sessions (arrival,
    connection time, energy, power) are drawn per scenario from the ElaadNL statistics
    (``forecasts.ev``), including the sessions of the evening before that are still
    plugged in after midnight.
    """

    kw_per_kw_load: NonNegFloat = 0.2
    charger_type: Literal["home", "workplace", "public"] = "home"
    charger_kw: Annotated[float, Field(gt=0.0, le=350.0)] = 11.0
    plug_in_probability: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.92
    buses: Annotated[int, Field(ge=0)] = 2


class DerConfig(_Frozen):
    """DER fleet on one feeder, in addition to the network's own PV and wind units."""

    pv: PvFleetConfig = PvFleetConfig()
    battery: BatteryFleetConfig = BatteryFleetConfig()
    ev: EvFleetConfig = EvFleetConfig()
    include_network_der: bool = True


class FeederConfig(_Frozen):
    """One distribution feeder attached to a transmission bus.

    ``share`` is the fraction of the transmission bus's nominal load that the feeder
    replaces; the feeder is scaled (as that many identical copies in parallel) so its
    nominal demand equals it. ``network`` is a built-in name, a SimBench code
    (``simbench:1-MV-rural--0-sw``), a pandapower JSON file or, from Python, a
    pandapowerNet. ``line_max_i_ka`` sets the rating of lines of the network
    (pandapower line index -> kA, per copy), e.g. a thin line the DSO must manage.

    A network with several substations (in-service ``ext_grid``, e.g. ``mv_oberrhein``)
    is by default a forest: each substation's part becomes a feeder ``<name>.<ext_grid
    index>`` with the same settings, attached to ``bus`` or, with a list, each to its own
    bus (one per substation, in ``ext_grid`` order); together the parts replace ``share``
    of the load. ``substation: K`` keeps only the part fed by ``ext_grid`` K.
    """

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    network: NetworkSpec = "cigre_mv"
    bus: str | Annotated[list[str], Field(min_length=1)]
    substation: Annotated[int, Field(ge=0)] | None = None
    share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.3
    vm_min_pu: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    vm_max_pu: Annotated[float, Field(gt=1.0, lt=1.5)] = 1.05
    line_max_i_ka: dict[Annotated[int, Field(ge=0)], PositiveFloat] = {}
    der: DerConfig = DerConfig()

    @field_validator("bus", mode="before")
    @classmethod
    def _bus_to_str(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) else v for v in value]
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _one_bus_for_one_substation(self) -> FeederConfig:
        if self.substation is not None and isinstance(self.bus, list) and len(self.bus) > 1:
            raise ValueError(
                f"feeder '{self.name}': substation {self.substation} keeps one part of the "
                f"network, so give one bus, not {len(self.bus)}"
            )
        return self


#: second-stage resolutions the scenario data come at [min] (quarter-hourly history,
#: block means above 15 min, a mean-preserving refinement at 5 min); the same as
#: ``forecasts.resolution.VALID_MINUTES``
SECOND_STAGE_MINUTES = (60, 30, 15, 5)


def first_stage_choices(second_stage_minutes: int, horizon_hours: int) -> list[int]:
    """First-stage resolutions [min] that fit a second stage and a horizon.

    Parameters
    ----------
    second_stage_minutes : int [min]
    horizon_hours : int [h]

    Returns
    -------
    list of int
        The multiples of ``second_stage_minutes`` that divide ``horizon_hours * 60``.
    """
    total = horizon_hours * 60
    return [
        m for m in range(second_stage_minutes, total + 1, second_stage_minutes) if total % m == 0
    ]


def second_stage_choices(first_stage_minutes: int, horizon_hours: int) -> list[int]:
    """Second-stage resolutions [min] of the scenario data that divide a first stage.

    Parameters
    ----------
    first_stage_minutes : int [min]
    horizon_hours : int [h]

    Returns
    -------
    list of int
        The values of ``SECOND_STAGE_MINUTES`` that divide ``first_stage_minutes`` and
        ``horizon_hours * 60``, finest first.
    """
    return sorted(
        m
        for m in SECOND_STAGE_MINUTES
        if first_stage_minutes % m == 0 and (horizon_hours * 60) % m == 0
    )


class ResolutionConfig(_Frozen):
    """Time resolutions: first stage (day-ahead) and second stage (recourse) [min].

    ``second_stage_minutes`` is a resolution of the scenario data (60, 30, 15 or 5);
    ``first_stage_minutes`` any multiple of it that divides the horizon (e.g. 30 with
    15-min recourse, 120 or 240 with 30-min recourse, 15/15, 60/5). A first-stage value
    holds for every second-stage step inside its period. The study checks the horizon
    (:meth:`check_horizon`).
    """

    first_stage_minutes: Annotated[int, Field(gt=0, le=24 * 60)] = 60
    second_stage_minutes: Literal[SECOND_STAGE_MINUTES] = 15

    def check_horizon(self, horizon_hours: int) -> None:
        """Raise ValueError unless the stages nest and split ``horizon_hours`` evenly.

        The message is one line naming the valid values.
        """
        first, second = self.first_stage_minutes, self.second_stage_minutes
        total = horizon_hours * 60
        if first % second:
            firsts = first_stage_choices(second, horizon_hours)
            seconds = second_stage_choices(first, horizon_hours)
            alt = f" (or second_stage_minutes one of {_join(seconds)})" if seconds else ""
            raise ValueError(
                f"first_stage_minutes ({first}) is not a multiple of second_stage_minutes "
                f"({second}): a day-ahead period must hold whole recourse steps; with "
                f"{second}-min recourse and a {horizon_hours}-h horizon use "
                f"first_stage_minutes one of {_join(firsts)}{alt}"
            )
        if total % first:
            firsts = first_stage_choices(second, horizon_hours)
            raise ValueError(
                f"first_stage_minutes ({first}) does not divide the {horizon_hours}-h horizon "
                f"({total} min) into whole periods; with {second}-min recourse use "
                f"first_stage_minutes one of {_join(firsts)}, or change horizon_hours"
            )


def _join(values: list[int]) -> str:
    return ", ".join(map(str, values))


class ScenarioConfig(_Frozen):
    """Scenario set for PV, load and wind.

    ``method: forecast`` (default) issues probabilistic day-ahead forecasts from the
    history before the study (``forecasts.generate``, configured under ``forecast``);
    ``profile_noise`` perturbs the observed day (``forecasts.scenarios``, with the
    ``*_sigma`` and ``correlation_hours`` keys).
    """

    n_scenarios: Annotated[int, Field(ge=1, le=10000)] = 6
    method: Literal["forecast", "profile_noise"] = "forecast"
    pv_sigma: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    load_sigma: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05
    wind_sigma: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    correlation_hours: PositiveFloat = 3.0


class UserSeriesConfig(_Frozen):
    """A user time series of one resource: a column of a CSV file or a netCDF variable.

    ``file``: CSV with a ``time`` column, or netCDF with a time coordinate (a relative
    path is taken from the study file's folder). ``column``: the column or variable.
    ``time_zone``: the IANA time zone of naive time stamps (``Europe/Berlin`` with
    daylight saving, ``UTC``, ``Etc/GMT-1`` for UTC+1). Values: PV and wind in pu of
    installed capacity (0..1), load in pu of peak (>= 0); each value the mean over the
    interval starting at its stamp. ``latitude_deg`` / ``longitude_deg``: where the PV is
    (clear-sky feature) [deg]. Read and checked by ``forecasts.history.read_user_series``.
    """

    file: Annotated[str, Field(min_length=1)]
    column: Annotated[str, Field(min_length=1)]
    time_zone: Annotated[str, Field(min_length=1)]
    latitude_deg: Annotated[float, Field(ge=-90.0, le=90.0)] = 51.0
    longitude_deg: Annotated[float, Field(ge=-180.0, le=180.0)] = 10.0


#: a resource's history: a source name of ``forecasts.history`` or a user series
SourceSpec = str | UserSeriesConfig


class ForecastSourcesConfig(_Frozen):
    """History source of each resource of the scheduling model: a name or a user series.

    The names, user files and the days they cover are checked against
    :mod:`forecasts.history` by ``workbench.scenarios.check_forecast_sources`` (``cases``
    does not depend on ``forecasts``). The same source gives the forecast history and the
    observed day.
    """

    pv: SourceSpec = "simbench_pv"
    wind: SourceSpec = "simbench_wind"
    load_residential: SourceSpec = "simbench_load_residential"
    load_commercial: SourceSpec = "simbench_load_commercial"
    load_transmission: SourceSpec = "simbench_load_aggregate"


class EvEvaluationConfig(_Frozen):
    """EV pool scored against observed charging profiles (the SimBench 2016 profiles).

    EV sessions of a study are sampled from weekday statistics, so they serve any year.

    The observed series is the mean power per charger of six SimBench single-charger
    profiles, so a pool of 6 chargers is the comparable forecast.
    """

    charger_type: Literal["home", "workplace"] = "home"
    n_chargers: Annotated[int, Field(ge=1, le=100000)] = 6
    n_samples: Annotated[int, Field(ge=10, le=5000)] = 200


class EvaluationConfig(_Frozen):
    """Out-of-sample evaluation (``workbench forecast --evaluate``).

    The held-out period: the last calendar year of a multi-year source (trained on the
    years before), or every fourth ISO week of a one-year source (trained on the rest).
    """

    pv: str = "entsoe_de"
    load: str = "simbench_load_aggregate"
    ev: EvEvaluationConfig = EvEvaluationConfig()
    test_day_step: Annotated[int, Field(ge=1, le=28)] = 1
    n_samples: Annotated[int, Field(ge=10, le=5000)] = 500
    reduced_scenarios: Annotated[int, Field(ge=1, le=1000)] = 10


class ForecastConfig(_Frozen):
    """Probabilistic forecasting (``forecasts.models``, ``forecasts.generate``).

    ``covariates`` maps a resource to a CSV file with a ``time`` column (quarter-hours on
    the UTC+1 clock of the history) and numeric columns (e.g. a weather model's irradiance
    and temperature) used as extra features.
    """

    sources: ForecastSourcesConfig = Field(default_factory=ForecastSourcesConfig)
    n_samples: Annotated[int, Field(ge=1, le=20000)] = 500
    reduction: Literal["energy", "fast_forward", "none"] = "energy"
    issue_hour: Annotated[int, Field(ge=0, le=24)] = 12
    max_iter: Annotated[int, Field(ge=5, le=2000)] = 100
    copula: Literal["gaussian", "independent"] = "gaussian"
    covariates: dict[str, str] = Field(default_factory=dict)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @field_validator("covariates")
    @classmethod
    def _known_resources(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = [*ForecastSourcesConfig.model_fields, "evaluation_pv", "evaluation_load"]
        bad = [k for k in value if k not in allowed]
        if bad:
            raise ValueError(f"unknown resource(s) {bad}; allowed: {', '.join(allowed)}")
        return value


class RiskConfig(_Frozen):
    """Objective ``(1 - beta) E[cost] + beta CVaR_alpha[cost]``.

    ``recourse_efficiency_weight`` adds that weight of the expected cost, so that every
    scenario's recourse stays cost-efficient where the CVaR ignores it (beta = 1).
    """

    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
    beta: Fraction = 0.3
    recourse_efficiency_weight: Annotated[float, Field(ge=0.0, le=1.0)] = 1e-3


class PricesConfig(_Frozen):
    """Prices and penalties [EUR/MWh, EUR/MW per hour].

    The fuel of the TER is paid on their realised output (``transmission``); these are
    the prices of services and last resorts. ``voll``: load shed and EV energy not
    delivered. ``deviation``: balancing energy, each direction, on top of the fuel it
    changes. ``spill``: generation spilled outside a bid (TER below their down reserve,
    PV beyond its flexibility, wind). ``ter_emergency``: TER above their up reserve (within
    their headroom; emergency redispatch). ``ter_reserve`` / ``der_flexibility``: capacity,
    per MW and hour. ``der_activation``: activated battery/EV flexibility.
    ``pv_curtailment``: compensation of curtailment inside the accepted PV flexibility.
    ``der_reactive``: reactive power of the PV inverters, per Mvarh either direction (a
    utilisation payment of the order of the reactive-power services TSOs buy; unpriced,
    the LP leaves reactive power anywhere in its range wherever no voltage binds).
    """

    voll_eur_per_mwh: Annotated[float, Field(gt=0.0, le=1e5, allow_inf_nan=False)] = 3000.0
    deviation_eur_per_mwh: Price = 2.0
    spill_eur_per_mwh: Price = 200.0
    ter_emergency_eur_per_mwh: Price = 200.0
    ter_reserve_eur_per_mw_h: Price = 8.0
    der_flexibility_eur_per_mw_h: Price = 4.0
    der_activation_eur_per_mwh: Price = 5.0
    pv_curtailment_eur_per_mwh: Price = 60.0
    battery_degradation_eur_per_mwh: Price = 2.0
    der_reactive_eur_per_mvarh: Price = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> PricesConfig:
        if not self.ter_emergency_eur_per_mwh <= self.voll_eur_per_mwh:
            raise ValueError(
                "prices must satisfy ter_emergency <= voll (redispatch is cheaper than "
                f"shedding), got {self.ter_emergency_eur_per_mwh} / {self.voll_eur_per_mwh}"
            )
        if not self.pv_curtailment_eur_per_mwh <= self.spill_eur_per_mwh <= self.voll_eur_per_mwh:
            raise ValueError(
                "prices must satisfy pv_curtailment <= spill <= voll (a bid is cheaper than "
                "an emergency, and spilling cheaper than shedding), got "
                f"{self.pv_curtailment_eur_per_mwh} / {self.spill_eur_per_mwh} / "
                f"{self.voll_eur_per_mwh} EUR/MWh"
            )
        return self


class ModelConfig(_Frozen):
    """Formulation options.

    ``schedule_following``: TER follow a trajectory linear between knots at the period
    boundaries (``ramp``; the published schedule is its mean over each period) or
    constant within each period (``step``). ``lp_method``: HiGHS's interior-point
    method (``ipm``; measured several times faster than the simplex on the default study's
    multi-scenario LP), dual ``simplex``, or HiGHS's choice. ``ac_correction_iterations``:
    rounds in which the AC power flow's voltage errors and feeder losses are fed back into
    LinDistFlow and the day re-solved (0: none). ``storage_state``: ``carried`` (rolling
    days: each day's batteries start with the expected energy the previous day's schedule
    ends with, and EVs still plugged in at midnight with the charging it deferred; days run
    in order) or ``cyclic`` (every day starts from ``soc_init`` and uncontrolled charging
    before midnight; days are independent). ``oltc``: the on-load tap changers of the
    coupling transformers become a decision: each feeder's root voltage may move within
    ``oltc_range_pu`` of its set-point in every step (continuous relaxation; the AC check
    applies it rounded to the 1 % tap steps). ``commitment``: on/off of each TER per
    first-stage period: ``none`` (units run anywhere between the case's minimum and their
    capacity), ``binary`` (a first-stage on/off decision with the technologies' minimum
    stable output, minimum up and down times and start-up costs, solved as a HiGHS MIP
    within ``solver.mip_gap`` and ``solver.time_limit_s``) or ``relaxed`` (its LP
    relaxation: on/off in [0, 1], a lower bound on the binary cost).
    """

    polygon_sides: Literal[4, 8, 12, 16, 24, 32] = 8
    voltage_margin_pu: Annotated[float, Field(ge=0.0, le=0.05)] = 0.005
    cost_segments: Annotated[int, Field(ge=1, le=64)] = 8
    schedule_following: Literal["ramp", "step"] = "ramp"
    lp_method: Literal["ipm", "simplex", "choose"] = "ipm"
    ac_correction_iterations: Annotated[int, Field(ge=0, le=10)] = 0
    storage_state: Literal["carried", "cyclic"] = "carried"
    oltc: bool = False
    oltc_range_pu: Annotated[float, Field(gt=0.0, le=0.2)] = 0.05
    commitment: Literal["none", "relaxed", "binary"] = "none"


class SolverConfig(_Frozen):
    """HiGHS limits of a mixed-integer solve (``model.commitment: binary``).

    ``mip_gap``: relative gap between the best solution and the bound at which HiGHS stops
    (its ``mip_rel_gap``). ``time_limit_s``: wall-clock limit of one solve [s]; a MIP
    stopped there with a feasible solution reports it with its gap, without one the day
    fails.
    """

    mip_gap: Annotated[float, Field(ge=0.0, le=0.5)] = 0.005
    time_limit_s: Annotated[float, Field(gt=0.0, le=86400.0)] = 600.0


class HybridConfig(_Frozen):
    """Hybrid model: the DSO validates the DER bids of its feeders.

    ``fairness`` among the DER of a feeder: one acceptance ratio for all
    (``proportional``) or the smallest ratio maximised first (``max_min``). ``priority``
    when the DSO's own need and the TSO want the same flexibility: ``dso_first`` or
    ``tso_first``. Validation after the bids reach the TSO is the model ``hybrid``,
    before the DER bid the model ``hybrid:prevalidation``.
    """

    fairness: Literal["proportional", "max_min"] = "proportional"
    priority: Literal["dso_first", "tso_first"] = "dso_first"


class DsoConfig(_Frozen):
    """DSO-managed model: directions of the sweep of each feeder's P-Q region."""

    directions: Annotated[int, Field(ge=4, le=360)] = 16


class CoordinationConfig(_Frozen):
    """Options of the coordination models."""

    hybrid: HybridConfig = HybridConfig()
    dso: DsoConfig = DsoConfig()


class AcCheckConfig(_Frozen):
    """Ex-post AC power flow: every ``every_n_steps``-th step of up to ``max_scenarios``."""

    enabled: bool = True
    every_n_steps: Annotated[int, Field(ge=1)] = 1
    max_scenarios: Annotated[int, Field(ge=1)] | None = None


class StudyConfig(_Frozen):
    """A complete study definition."""

    name: Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^/\\\x00-\x1f]+$")] = (
        "study"
    )
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    start_date: dt.date = dt.date(2016, 6, 15)
    n_days: Annotated[int, Field(ge=1, le=366)] = 1
    start_hour: Annotated[int, Field(ge=0, le=23)] = 0
    horizon_hours: Annotated[int, Field(ge=1, le=24)] = 24
    models: tuple[Literal[COORDINATION_MODELS], ...] = ("tso_managed",)
    transmission: TransmissionConfig = Field(default_factory=TransmissionConfig)
    feeders: tuple[FeederConfig, ...] = Field(default=(), max_length=64)
    resolution: ResolutionConfig = ResolutionConfig()
    scenarios: ScenarioConfig = ScenarioConfig()
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    risk: RiskConfig = RiskConfig()
    prices: PricesConfig = PricesConfig()
    model: ModelConfig = ModelConfig()
    solver: SolverConfig = SolverConfig()
    coordination: CoordinationConfig = CoordinationConfig()
    ac_check: AcCheckConfig = AcCheckConfig()

    @field_validator("name")
    @classmethod
    def _name_makes_file_names(cls, value: str) -> str:
        if value.startswith(".") or value.strip() != value:
            raise ValueError(
                "must not start with '.' (a hidden file) nor start or end with a space; it "
                "names the result files (e.g. results/<name>.nc)"
            )
        if len(value.encode("utf-8")) > NAME_MAX_BYTES:
            raise ValueError(
                f"is {len(value.encode('utf-8'))} bytes long in UTF-8; at most {NAME_MAX_BYTES} "
                "bytes fit in the names of the result files (a non-ASCII letter takes 2-4)"
            )
        return value

    @field_validator("resolution")
    @classmethod
    def _resolution_fits_horizon(
        cls, value: ResolutionConfig, info: ValidationInfo
    ) -> ResolutionConfig:
        horizon = info.data.get("horizon_hours")
        if horizon is not None:  # else horizon_hours has its own error
            value.check_horizon(horizon)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        # the days the data sources cover are checked with the sources
        # (workbench.scenarios.check_forecast_sources)
        if self.start_hour + self.horizon_hours > 24:
            raise ValueError(
                f"start_hour + horizon_hours = {self.start_hour + self.horizon_hours}"
                " runs past midnight; keep it <= 24"
            )
        margin = self.model.voltage_margin_pu
        for f in self.feeders:
            if f.vm_max_pu - f.vm_min_pu <= 2.0 * margin:
                raise ValueError(
                    f"feeder '{f.name}': voltage band {f.vm_min_pu}..{f.vm_max_pu} pu is not "
                    f"wider than twice model.voltage_margin_pu ({margin}): no voltage is "
                    "allowed; widen vm_min_pu/vm_max_pu or lower the margin"
                )
        names = [f.name for f in self.feeders]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"feeder names must be unique, repeated: {sorted(dup)}")
        if len(set(self.models)) != len(self.models) or not self.models:
            raise ValueError("models must list each coordination model once")
        return self

    @property
    def days(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=i) for i in range(self.n_days)]

    @classmethod
    def from_yaml(cls, path: str | Path) -> StudyConfig:
        """Load a study YAML file or a built-in study by name (as :func:`load_study`)."""
        return load_study(path)

    @classmethod
    def from_results(cls, results: Any) -> StudyConfig:
        """The study a results file (or Dataset) of ``workbench run`` was computed from.

        Everything the results hold to run it again: the study's keys, the seed the run
        used (``attrs["seed"]``) and the networks the YAML cannot name (net objects given
        from Python, JSON files), kept as pandapower JSON in ``attrs["study_networks_json"]``.
        ``workbench.run(Study.from_results(path))`` reproduces the numbers.

        Parameters
        ----------
        results : path or xarray.Dataset
            A ``.nc`` file or ``.zarr`` store written by the workbench, or its Dataset.

        Raises
        ------
        StudyConfigError
            When ``results`` holds no study of this workbench.
        """
        from cases.archive import NETWORKS_ATTR, STUDY_ATTR, restore_study

        attrs, source = _results_attrs(results)
        if STUDY_ATTR not in attrs:
            raise StudyConfigError(
                f"{source} holds no study (no '{STUDY_ATTR}' attribute); give a results file "
                "written by `workbench run` or `workbench.run`"
            )
        study = restore_study(attrs[STUDY_ATTR], attrs.get(NETWORKS_ATTR), source)
        if "seed" in attrs:
            study = study.model_copy(update={"seed": int(attrs["seed"])})
        return study

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The study as YAML text (every key, defaults included); written to ``path`` too
        when given. :meth:`from_yaml` of that file gives an equal study."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def replace(self, **changes: Any) -> StudyConfig:
        """A new, validated study with ``changes`` applied; this one stays as it is.

        A mapping merges into its section (``replace(risk={"beta": 0.5})`` keeps
        ``risk.alpha``); a dotted name sets one key (``replace(**{"risk.beta": 0.5})``,
        ``replace(**{"feeders.0.share": 0.2})``); any other value replaces the key.

        Raises
        ------
        StudyConfigError
            One line naming the key, as for a study file: an unknown key, a bad value.
        """
        data = _plain(self)
        source = f"study '{self.name}' replace()"
        for key, value in changes.items():
            _set_key(data, key.split("."), value, source, key)
        return parse_study(data, source)


def _results_attrs(results: Any) -> tuple[dict, str]:
    """The attributes of a results Dataset, file or store, and how to name it."""
    import xarray as xr

    if isinstance(results, xr.Dataset):
        return dict(results.attrs), "the Dataset"
    if not isinstance(results, str | Path):
        raise StudyConfigError(
            f"from_results takes a results file path or an xarray.Dataset, got "
            f"{type(results).__name__}"
        )
    path = Path(results)
    source = f"results '{path}'"
    if not path.exists():
        raise StudyConfigError(f"{source} do not exist; give a file written by `workbench run`")
    try:
        if path.is_dir():
            with xr.open_zarr(path) as ds:
                return dict(ds.attrs), source
        with xr.open_dataset(path) as ds:
            return dict(ds.attrs), source
    except (OSError, ValueError, KeyError) as exc:
        raise StudyConfigError(f"{source} cannot be read as netCDF or zarr ({exc})") from None


def _plain(value: Any) -> Any:
    """A study (or a part of it) as plain mappings and lists, so keys and items can be set;
    other objects, e.g. a network, are kept as they are (the same object, not a copy)."""
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return [_plain(v) for v in value]
    return value


def _merged(current: Any, value: Any) -> Any:
    """``value`` merged into ``current`` where both are mappings, else ``value``."""
    value = _plain(value)
    if type(current) is dict and type(value) is dict:
        out = dict(current)
        for k, v in value.items():
            out[k] = _merged(out.get(k), v)
        return out
    return value


def _set_key(data: dict, parts: list[str], value: Any, source: str, key: str) -> None:
    """Put ``value`` at the dotted ``parts`` of a study mapping (list items by index);
    an unknown key is left for validation to report with the allowed keys."""
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if type(node) is list:
            if not (part.isdigit() and int(part) < len(node)):
                where = f"use 0..{len(node) - 1}" if node else "the list is empty"
                raise StudyConfigError(
                    f"{source}: '{key}': '{part}' is no index of the list "
                    f"'{'.'.join(parts[:depth])}' ({where})"
                )
            slot: Any = int(part)
        elif type(node) is dict:
            slot = part
            if not last and slot not in node:
                node[slot] = {}
        else:
            raise StudyConfigError(
                f"{source}: '{key}': '{'.'.join(parts[:depth])}' is a value, not a section "
                "with keys; set it without the part after it"
            )
        if last:
            present = type(node) is list or slot in node
            node[slot] = _merged(node[slot] if present else None, value)
        else:
            node = node[slot]


def _format_error(err: dict, source: str) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_loc = err["loc"][:-1]
        allowed = _allowed_keys(parent_loc)
        return f"{source}: unknown key '{loc}'" + (
            f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        )
    given = err.get("input")
    given_txt = "" if isinstance(given, dict | list) else f" (given: {given!r})"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern", "")
        msg = _PATTERN_WORDS.get(pattern, msg)
    return f"{source}: {loc}: {msg}{given_txt}"


#: what the name patterns of the study file mean, in words
_PATTERN_WORDS = {
    r"^[A-Za-z0-9_.-]+$": "use letters, digits, '_', '.' and '-' only (no spaces)",
    r"^[^/\\\x00-\x1f]+$": "no '/', '\\' or control characters (it names the result files)",
}


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", (ann,))
        nxt = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


def parse_study(data: Any, source: str = "study") -> StudyConfig:
    """Validate a study given as a mapping (e.g. parsed YAML).

    Raises
    ------
    StudyConfigError
        With one line per problem: the key, what is wrong, what is allowed.
    """
    if not isinstance(data, dict):
        raise StudyConfigError(
            f"{source}: a study file must be a YAML mapping of keys to "
            f"values, got {type(data).__name__}"
        )
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_format_error(e, source) for e in _source_union_errors(exc.errors())]
        raise StudyConfigError("; ".join(lines)) from None


def _source_union_errors(errors: list) -> list:
    """The errors of a ``forecast.sources`` entry (a name or a user series) told once.

    A mapping was meant as a user series, anything else as a source name; the errors of
    the other reading are dropped and the union's branch is left out of the location.
    """
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        branch = next((p for p in loc if p in ("str", "UserSeriesConfig")), None)
        if branch is None:
            out.append(err)
            continue
        given = err.get("input")
        if branch == "str" and isinstance(given, dict):
            continue
        if branch == "UserSeriesConfig" and err["type"] == "model_type":
            continue
        err = {**err, "loc": tuple(p for p in loc if p != branch)}
        if branch == "str":
            err["msg"] = (
                "give a source name (e.g. entsoe_de) or a user series "
                "{file: ..., column: ..., time_zone: ...}"
            )
        out.append(err)
    return out


class StudyYamlLoader(yaml.SafeLoader):
    """YAML's safe loader with two changes for study files.

    * Dates stay text: the study checks them, so ``start_date: 2016-02-30`` is one line
      naming the key (YAML's own date parser would fail with a traceback).
    * A key given twice in one mapping is an error naming both lines (YAML would keep the
      last one silently).
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key; YAML itself reports it
                    continue
                seen.setdefault(key, line)
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key '{key}' is given twice in one section (lines {first} and "
                        f"{line}); keep one",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


StudyYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_study_yaml(text: str) -> Any:
    """Parse study YAML text with :class:`StudyYamlLoader`.

    Raises
    ------
    yaml.YAMLError
    """
    return yaml.load(text, Loader=StudyYamlLoader)


def builtin_studies() -> dict[str, Path]:
    """Study files shipped in ``cases/studies`` (name -> path)."""
    folder = resources.files("cases") / "studies"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def load_study(path: str | Path) -> StudyConfig:
    """Load and validate a study YAML file (or the name of a built-in study).

    Raises
    ------
    StudyConfigError
        Missing file, invalid YAML, or invalid content.
    """
    text = str(path)
    p = Path(text)
    if not p.is_file():
        studies = builtin_studies()
        if text in studies:
            p = studies[text]
        elif p.is_dir():
            raise StudyConfigError(
                f"study '{text}' is a folder; give a study YAML file in it or a built-in study "
                f"({', '.join(sorted(studies))})"
            )
        else:
            raise StudyConfigError(
                f"study file '{text}' not found; give a YAML file or a built-in study "
                f"({', '.join(sorted(studies))})"
            )
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise StudyConfigError(f"study file '{p}' cannot be read: {exc.strerror}") from None
    if b"\x00" in raw[:8192]:
        raise StudyConfigError(f"study file '{p}' is binary, not a YAML text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyConfigError(
            f"study file '{p}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML"
        ) from None
    try:
        data = read_study_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StudyConfigError(f"{p}: not valid YAML{where}: {problem}") from None
    if data is None:
        raise StudyConfigError(
            f"study file '{p}' is empty; write at least 'name: my_study' (every other key "
            "has a default), or run the built-in 'default' study"
        )
    return parse_study(_resolve_paths(data, p.parent), str(p))


def _resolve_paths(data: Any, base: Path) -> Any:
    """A study mapping with its relative file paths (network ``.json`` files, covariate
    ``.csv`` files) made absolute against ``base``, the study file's folder, so a study
    runs the same from any working directory."""
    if not isinstance(data, dict):
        return data

    def fix(value: Any, suffixes: tuple[str, ...]) -> Any:
        if isinstance(value, str) and value.lower().endswith(suffixes):
            path = Path(value).expanduser()
            return str(path if path.is_absolute() else (base / path).resolve())
        return value

    out = dict(data)
    t = out.get("transmission")
    if isinstance(t, dict) and "network" in t:
        out["transmission"] = {**t, "network": fix(t["network"], (".json",))}
    if isinstance(out.get("feeders"), list):
        out["feeders"] = [
            {**f, "network": fix(f["network"], (".json",))}
            if isinstance(f, dict) and "network" in f
            else f
            for f in out["feeders"]
        ]
    if isinstance(out.get("forecast"), dict) and isinstance(
        out["forecast"].get("covariates"), dict
    ):
        fc = dict(out["forecast"])
        fc["covariates"] = {k: fix(v, (".csv",)) for k, v in fc["covariates"].items()}
        out["forecast"] = fc
    if isinstance(out.get("forecast"), dict) and isinstance(out["forecast"].get("sources"), dict):
        fc = dict(out["forecast"])
        fc["sources"] = {
            k: {**v, "file": fix(v["file"], ("",))}
            if isinstance(v, dict) and isinstance(v.get("file"), str)
            else v
            for k, v in fc["sources"].items()
        }
        out["forecast"] = fc
    return out
