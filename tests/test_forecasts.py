"""Probabilistic forecasts: models, copula, reduction, resolutions, scores and errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
import xarray as xr

from cases.errors import StudyConfigError
from cases.study import parse_study
from forecasts.copula import (
    correlation_length_steps,
    exponential_autocorrelation,
    fit_autocorrelation,
    sample_uniform,
)
from forecasts.errors import ForecastError
from forecasts.evaluate import (
    climatology_members,
    ev_history,
    evaluate_ev,
    evaluate_source,
    fit_plug_in_probability,
    split_days,
)
from forecasts.generate import fit_scenario_forecaster, forecast_scenarios
from forecasts.history import load_history
from forecasts.models import QuantileForecaster
from forecasts.quantiles import coverage, quantile_function, randomized_pit
from forecasts.reduction import energy_selection, fast_forward_selection
from forecasts.resolution import from_quarter_hours
from workbench.cli import main

SOURCES = {"pv": "simbench_pv", "load_transmission": "simbench_load_transmission"}
DAY = dt.date(2016, 6, 15)


@pytest.fixture(scope="module")
def scenario_forecaster():
    return fit_scenario_forecaster(
        SOURCES, before=DAY, levels=(0.05, 0.25, 0.5, 0.75, 0.95), max_iter=15, random_state=3
    )


def _scenarios(fc, **kw):
    args = {"seed": 11, "n_samples": 60, "resolutions_minutes": (5, 15, 30, 60)} | kw
    return forecast_scenarios(fc, DAY, 5, **args)


# --------------------------------------------------------------------------- scenarios


def test_same_seed_same_scenarios_bit_for_bit(scenario_forecaster):
    a, b = _scenarios(scenario_forecaster), _scenarios(scenario_forecaster)
    xr.testing.assert_identical(a, b)
    other = _scenarios(scenario_forecaster, seed=12)
    assert not np.array_equal(a["value_pu"], other["value_pu"])


def test_refit_with_the_same_random_state_is_identical(scenario_forecaster):
    again = fit_scenario_forecaster(
        SOURCES, before=DAY, levels=(0.05, 0.25, 0.5, 0.75, 0.95), max_iter=15, random_state=3
    )
    xr.testing.assert_identical(_scenarios(scenario_forecaster), _scenarios(again))


def test_resolutions_are_consistent_by_aggregation(scenario_forecaster):
    ds = _scenarios(scenario_forecaster)
    v5 = ds["value_pu"].to_numpy()  # finest: 5 min
    v15 = ds["value_15min_pu"].to_numpy()
    v30 = ds["value_30min_pu"].to_numpy()
    v60 = ds["value_60min_pu"].to_numpy()
    n = v15.shape[1]
    np.testing.assert_allclose(v5.reshape(5, n, 3, -1).mean(axis=2), v15, atol=1e-12)
    np.testing.assert_allclose(v15.reshape(5, n // 2, 2, -1).mean(axis=2), v30, atol=1e-12)
    np.testing.assert_allclose(v15.reshape(5, n // 4, 4, -1).mean(axis=2), v60, atol=1e-12)
    np.testing.assert_allclose(ds["value_hourly_pu"], v60, atol=1e-12)
    pv = ds["value_pu"].sel(resource="pv")
    assert float(pv.min()) >= 0.0 and float(pv.max()) <= 1.0
    assert float(ds["value_pu"].sel(resource="load_transmission").min()) >= 0.0


def test_weights_sum_to_one_and_quantiles_do_not_cross(scenario_forecaster):
    ds = _scenarios(scenario_forecaster)
    assert float(ds["weight"].sum()) == pytest.approx(1.0, abs=1e-12)
    assert (ds["weight"] > 0).all()
    q = ds["quantile_pu"].to_numpy()
    assert (np.diff(q, axis=0) >= -1e-12).all()
    assert ds["value_pu"].attrs["units"] == "pu"


def test_window_and_independent_sampling(scenario_forecaster):
    ds = _scenarios(scenario_forecaster, start_hour=10, horizon_hours=4)
    assert ds.sizes["time"] == 4 * 12 and ds.sizes["time_60min"] == 4
    assert pd.Timestamp(ds.time.to_numpy()[0]) == pd.Timestamp(DAY) + pd.Timedelta(hours=10)
    ind = _scenarios(scenario_forecaster, independent=True)
    assert ind.attrs["generator"] == "quantile_independent"


def test_copula_samples_are_temporally_correlated(scenario_forecaster):
    """Lag-1 correlation of load scenarios is high with the copula and ~0 without."""

    def lag1(ds):
        z = ds["value_15min_pu"].sel(resource="load_transmission").to_numpy()
        z = z - z.mean(axis=0)
        return np.mean([np.corrcoef(z[:, t], z[:, t + 1])[0, 1] for t in range(40, 60)])

    kw = {"n_samples": 400, "reduction": "none"}
    assert lag1(_scenarios(scenario_forecaster, **kw)) > 0.5
    assert abs(lag1(_scenarios(scenario_forecaster, independent=True, **kw))) < 0.2


# --------------------------------------------------------------------------- building blocks


def test_quantile_function_is_monotone_and_bounded():
    q = np.array([[0.1, 0.3, 0.6], [0.0, 0.0, 0.2]])
    u = np.linspace(0, 1, 101)
    v = quantile_function(
        q, np.array([0.1, 0.5, 0.9]), np.broadcast_to(u, (2, 101)), lower=0.0, upper=1.0
    )
    assert (np.diff(v, axis=-1) >= 0).all()
    assert v.min() >= 0.0 and v.max() <= 1.0
    np.testing.assert_allclose(v[0, [10, 50, 90]], [0.1, 0.3, 0.6])


def test_randomized_pit_is_uniform_for_a_calibrated_forecast():
    rng = np.random.default_rng(0)
    levels = np.linspace(0.05, 0.95, 19)
    y = rng.random(20000)  # uniform on (0, 1): quantiles are the levels themselves
    q = np.broadcast_to(levels, (len(y), len(levels)))
    pit = randomized_pit(y, q, levels, rng, lower=0.0, upper=1.0)
    hist = np.histogram(pit, bins=10, range=(0, 1))[0] / len(pit)
    np.testing.assert_allclose(hist, 0.1, atol=0.01)
    assert coverage(y, np.full_like(y, 0.1), np.full_like(y, 0.9)) == pytest.approx(0.8, abs=0.01)


def test_copula_correlation_is_recovered():
    rng = np.random.default_rng(1)
    u = sample_uniform(400, 96, exponential_autocorrelation(10.0, 96)[None], rng)
    from scipy.stats import norm

    rho = fit_autocorrelation(norm.ppf(u[:, 0]))
    assert correlation_length_steps(rho) == pytest.approx(10.0, rel=0.15)
    assert abs(u.mean() - 0.5) < 0.03  # effective sample ~2000 (correlated steps)


def test_copula_keeps_a_non_exponential_autocorrelation():
    # a slowly moving part (lag-1 0.99) plus a jagged one: no AR(1) has these lags
    rho = 0.7 * exponential_autocorrelation(40.0, 96) + 0.3 * (np.arange(96) == 0)
    u = sample_uniform(600, 96, rho[None], np.random.default_rng(3))
    from scipy.stats import norm

    fitted = fit_autocorrelation(norm.ppf(u[:, 0]))
    np.testing.assert_allclose(fitted[[1, 2, 4, 8]], rho[[1, 2, 4, 8]], atol=0.04)


def test_fast_forward_selection_properties():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 24))
    idx, w = fast_forward_selection(x, 10)
    assert len(set(idx.tolist())) == 10 and w.sum() == pytest.approx(1.0)
    # keeping everything changes nothing
    idx_all, w_all = fast_forward_selection(x, 200)
    assert sorted(idx_all.tolist()) == list(range(200))
    np.testing.assert_allclose(np.sort(w_all), np.full(200, 1 / 200))

    # the selection is closer to the sample than a random subset of the same size
    def transport(sel):
        d = np.linalg.norm(x[:, None] - x[None, sel], axis=-1)
        return d.min(axis=1).mean()

    assert transport(idx) < transport(rng.choice(200, 10, replace=False))
    with pytest.raises(ForecastError, match=r"n_scenarios must be in 1\.\.200"):
        fast_forward_selection(x, 0)


def test_energy_selection_keeps_the_spread():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 12))
    idx, w = energy_selection(x, 10)
    assert len(set(idx.tolist())) == 10
    np.testing.assert_allclose(w, 0.1)

    def energy_distance(sel):
        d = np.linalg.norm(x[:, None] - x[None, sel], axis=-1)
        inner = np.linalg.norm(x[sel][:, None] - x[None, sel], axis=-1)
        return 2 * d.mean() - inner.mean()

    assert energy_distance(idx) < energy_distance(rng.choice(300, 10, replace=False))
    # the kept set is as spread out as the sample, fast forward's is narrower
    ffs, _ = fast_forward_selection(x, 10)
    assert x[idx].std(axis=0).mean() > x[ffs].std(axis=0).mean()


def test_five_minute_refinement_keeps_means_and_bounds():
    v = np.array([[0.0, 0.2, 1.0, 0.6]])
    five = from_quarter_hours(v, 5, lower=0.0, upper=1.0)
    np.testing.assert_allclose(five.reshape(1, 4, 3).mean(axis=-1), v)
    assert five.min() >= 0.0 and five.max() <= 1.0
    with pytest.raises(ForecastError, match="allowed: 5, 15, 30, 60"):
        from_quarter_hours(v, 10)


# --------------------------------------------------------------------------- scores


def test_scores_against_hand_computed_values():
    # CRPS of {0, 1} at 0.5: E|X - y| - E|X - X'| / 2 = 0.5 - 0.25
    assert sr.crps_ensemble(0.5, np.array([0.0, 1.0])) == pytest.approx(0.25)
    # energy score in one dimension equals the CRPS
    assert sr.es_ensemble(np.array([0.5]), np.array([[0.0], [1.0]])) == pytest.approx(0.25)
    # variogram score (p = 0.5) of members (0, 1), (0, 1) at (0, 4): 2 * (2 - 1)^2
    vs = sr.vs_ensemble(np.array([0.0, 4.0]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert vs == pytest.approx(2.0)
    # weighted energy score: all weight on the exact member gives the CRPS of a point mass
    es_w = sr.es_ensemble(
        np.array([1.0, 1.0]), np.array([[1.0, 1.0], [5.0, 5.0]]), ens_w=np.array([1.0, 0.0])
    )
    assert es_w == pytest.approx(0.0)


def test_held_out_evaluation_beats_climatology_and_persistence():
    """One-hour-ahead PV on a small sample of held-out days of 2020 (ENTSO-E DE)."""
    scores, _ = evaluate_source("entsoe_de", "1h", test_day_step=28, max_iter=20)
    assert scores.n_days == 14
    assert scores.crps < 0.7 * scores.crps_climatology
    assert scores.crps < scores.crps_persistence
    assert 0.65 < scores.coverage_10_90 < 0.95
    # calibrated: no PIT decile is empty or holds more than twice its share
    assert 0.03 < min(scores.pit_histogram) and max(scores.pit_histogram) < 0.2


def test_split_and_climatology():
    history = load_history("simbench_load_transmission")
    train, test = split_days(history)
    assert len(set(train) & set(test)) == 0
    assert (test.isocalendar().week % 4 == 0).all()
    members = climatology_members(history, train, test[3])
    assert members.shape[1] == 96 and 15 <= len(members) <= 31


# --------------------------------------------------------------------------- EV


def test_ev_plug_in_probability_matches_the_measured_energy():
    history = ev_history("home")
    train, _ = split_days(history)
    p = fit_plug_in_probability(history, train, "home")
    assert 0.05 < p < 0.5
    scores, details = evaluate_ev("home", 6, test_day_step=13, n_samples=40)
    assert details["plug_in_probability"] == pytest.approx(p)
    assert scores.extra["units"] == "kW per charger"
    assert 0.5 < scores.coverage_10_90 < 0.95  # nominal 0.8
    assert scores.energy_score_reduced is not None
    with pytest.raises(ForecastError, match="choose one of"):
        ev_history("public")


# --------------------------------------------------------------------------- input errors


def test_forecaster_input_errors():
    with pytest.raises(ForecastError, match=r"allowed: .*entsoe_de"):
        load_history("nope")
    with pytest.raises(ForecastError, match="28"):
        fit_scenario_forecaster(SOURCES, before=dt.date(2016, 1, 20))
    history = load_history("simbench_load_transmission").copy()
    history.iloc[500] = np.nan
    with pytest.raises(ForecastError, match="NaN"):
        QuantileForecaster(kind="load", max_iter=5).fit(history)


def test_scenario_request_errors(scenario_forecaster):
    with pytest.raises(ForecastError, match=r"n_scenarios must be in 1..n_samples \(60\)"):
        forecast_scenarios(scenario_forecaster, DAY, 61, seed=1, n_samples=60)
    with pytest.raises(ForecastError, match="allowed: 5, 15, 30, 60"):
        forecast_scenarios(scenario_forecaster, DAY, 2, seed=1, resolutions_minutes=(20,))
    with pytest.raises(ForecastError, match="reduction"):
        forecast_scenarios(scenario_forecaster, DAY, 2, seed=1, reduction="kmeans")
    ffs = forecast_scenarios(
        scenario_forecaster, DAY, 4, seed=1, n_samples=40, reduction="fast_forward"
    )
    assert float(ffs["weight"].sum()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("forecast", "needle"),
    [
        ({"sources": {"pv": "simbench_wind"}}, "forecast.sources.pv: unknown pv source"),
        ({"evaluation": {"load": "entsoe_de"}}, "forecast.evaluation.load: unknown load source"),
    ],
)
def test_study_forecast_sources_are_checked(forecast, needle):
    from workbench.scenarios import check_forecast_sources

    with pytest.raises(ForecastError, match=needle) as err:
        check_forecast_sources(parse_study({"forecast": forecast}, "bad"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("forecast", "needle"),
    [
        ({"covariates": {"battery": "x.csv"}}, "allowed: pv"),
        ({"copula": "vine"}, "forecast.copula"),
        ({"evaluation": {"ev": {"charger_type": "public"}}}, "charger_type"),
    ],
)
def test_study_forecast_settings_are_validated(forecast, needle):
    with pytest.raises(StudyConfigError, match=needle) as err:
        parse_study({"forecast": forecast}, "bad")
    assert "\n" not in str(err.value)


def test_cli_forecast_user_errors_are_one_line(tmp_path, capsys):
    study = tmp_path / "s.yaml"
    study.write_text("forecast:\n  sources:\n    pv: sunshine\n")
    assert main(["forecast", str(study)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "sunshine" in err
    assert main(["forecast", "--out", str(tmp_path / "x.csv")]) == 2
    assert "must end in .nc or .zarr" in capsys.readouterr().err
    cov = tmp_path / "cov.csv"
    cov.write_text("time,irr\n2016-01-01 00:00,1\n")
    study.write_text(f"forecast:\n  covariates:\n    pv: {cov}\n")
    assert main(["forecast", str(study), "--no-plots", "--out", str(tmp_path / "o.nc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and "covariates" in err


def test_covariates_carry_their_skill(tmp_path):
    """A user's 'weather forecast' (here: the measured PV plus noise) sharpens day-ahead PV."""
    from forecasts.covariates import read_covariates

    history = load_history("entsoe_de")
    rng = np.random.default_rng(5)
    nwp = np.clip(history.to_numpy() + rng.normal(0.0, 0.03, len(history)), 0.0, 1.0)
    path = tmp_path / "nwp.csv"
    pd.DataFrame({"time": history.index, "pv_forecast_pu": nwp}).to_csv(path, index=False)
    covariates = read_covariates(path, field="forecast.covariates.evaluation_pv")
    kw = {"test_day_step": 28, "max_iter": 20, "n_samples": 50}
    plain, _ = evaluate_source("entsoe_de", "day_ahead", **kw)
    informed, details = evaluate_source("entsoe_de", "day_ahead", covariates=covariates, **kw)
    assert "cov_pv_forecast_pu" in details["forecaster"].feature_names_
    assert informed.crps < 0.75 * plain.crps  # 0.021 vs 0.033 pu with max_iter=20
    assert plain.crps <= plain.crps_climatology


def test_daylight_saving_days_have_96_quarter_hours():
    from cases.profiles import day_profiles

    for day in (dt.date(2016, 3, 27), dt.date(2016, 10, 30)):
        profile = day_profiles(day)
        assert len(profile) == 96 and profile.index.is_unique
    assert load_history("simbench_pv").index.equals(
        pd.date_range("2016-01-01", periods=366 * 96, freq="15min")
    )


def test_fitted_forecaster_keeps_its_covariates():
    history = load_history("simbench_load_transmission")
    covariates = {
        "load": pd.DataFrame({"shifted": np.roll(history.to_numpy(), 96)}, index=history.index)
    }
    kw = {"before": DAY, "levels": (0.1, 0.5, 0.9), "max_iter": 5, "random_state": 1}
    fc = fit_scenario_forecaster(
        {"load": "simbench_load_transmission"}, covariates=covariates, **kw
    )
    assert fc.forecasters[0].feature_names_[-1] == "cov_shifted"
    implicit = forecast_scenarios(fc, DAY, 3, seed=2, n_samples=30)
    explicit = forecast_scenarios(fc, DAY, 3, seed=2, n_samples=30, covariates=covariates)
    xr.testing.assert_identical(implicit, explicit)
    with pytest.raises(ForecastError, match="covariates"):
        forecast_scenarios(
            fc, DAY, 3, seed=2, n_samples=30, covariates={"load": covariates["load"][:96]}
        )
