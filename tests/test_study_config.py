"""Study files: validation errors name the key and the allowed values; CLI exits with 2."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cases import StudyConfigError, builtin_studies, load_study, parse_study
from tests.conftest import SMALL_STUDY
from workbench.cli import main


def _write(tmp_path, data, name="study.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def _cli_error(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def test_builtin_studies_load():
    studies = builtin_studies()
    assert "default" in studies
    for path in studies.values():
        load_study(path)


def test_unknown_key_names_the_key_and_allowed_keys(tmp_path, capsys):
    data = copy.deepcopy(SMALL_STUDY)
    data["risk"]["gamma"] = 0.3
    path = _write(tmp_path, data)
    with pytest.raises(
        StudyConfigError,
        match=r"unknown key 'risk.gamma'; allowed keys here: "
        r"alpha, beta",
    ):
        load_study(path)
    code, err = _cli_error(capsys, "run", path)
    assert code == 2
    assert err.startswith("error:") and "risk.gamma" in err and len(err.splitlines()) == 1


def test_unknown_top_level_key(tmp_path):
    data = {**SMALL_STUDY, "scenario": {"n_scenarios": 3}}
    with pytest.raises(StudyConfigError, match=r"unknown key 'scenario'.*scenarios"):
        load_study(_write(tmp_path, data))


def test_value_out_of_range_names_key_and_value(tmp_path):
    data = copy.deepcopy(SMALL_STUDY)
    data["risk"]["alpha"] = 1.5
    with pytest.raises(
        StudyConfigError,
        match=r"risk.alpha: Input should be less than 1 "
        r"\(given: 1.5\)",
    ):
        load_study(_write(tmp_path, data))


def test_wrong_choice_lists_allowed_values(tmp_path):
    data = copy.deepcopy(SMALL_STUDY)
    data["resolution"] = {"second_stage_minutes": 10}
    with pytest.raises(
        StudyConfigError,
        match=r"second_stage_minutes: Input should be 60, 30, "
        r"15 or 5",
    ):
        load_study(_write(tmp_path, data))


def test_wrong_type(tmp_path):
    data = copy.deepcopy(SMALL_STUDY)
    data["scenarios"]["n_scenarios"] = "many"
    with pytest.raises(
        StudyConfigError,
        match=r"scenarios.n_scenarios: Input should be a "
        r"valid integer",
    ):
        load_study(_write(tmp_path, data))


def test_date_outside_the_sources(tmp_path):
    """Any date parses; the days the sources cover are checked with the sources."""
    from forecasts.errors import ForecastError
    from workbench.scenarios import check_forecast_sources

    study = load_study(_write(tmp_path, {**SMALL_STUDY, "start_date": "2019-06-15"}))
    check_forecast_sources(study)  # SimBench 2016 as a typical year
    late = load_study(_write(tmp_path, {**SMALL_STUDY, "start_date": "2021-06-15"}))
    with pytest.raises(ForecastError, match=r"^start_date 2021-06-15: .*2016-01-01 .. 2020-12-31"):
        check_forecast_sources(late)


def test_horizon_past_midnight(tmp_path):
    data = {**SMALL_STUDY, "start_hour": 22, "horizon_hours": 4}
    with pytest.raises(StudyConfigError, match=r"runs past midnight"):
        load_study(_write(tmp_path, data))


def test_duplicate_feeder_names(tmp_path):
    data = copy.deepcopy(SMALL_STUDY)
    data["feeders"][1]["name"] = "f1"
    with pytest.raises(StudyConfigError, match=r"feeder names must be unique.*f1"):
        load_study(_write(tmp_path, data))


def test_invalid_yaml_reports_line(tmp_path, capsys):
    path = _write(tmp_path, "name: x\nrisk: {alpha: 0.9\n")
    with pytest.raises(StudyConfigError, match=r"not valid YAML at line \d+"):
        load_study(path)
    code, err = _cli_error(capsys, "run", path)
    assert code == 2 and len(err.splitlines()) == 1


def test_missing_study_file(capsys):
    code, err = _cli_error(capsys, "run", "no_such_study.yaml")
    assert code == 2
    assert "study file 'no_such_study.yaml' not found" in err and "default" in err


def test_not_a_mapping(tmp_path):
    with pytest.raises(StudyConfigError, match=r"must be a YAML mapping"):
        load_study(_write(tmp_path, "- a\n- b\n"))


def test_unknown_feeder_network_via_cli(tmp_path, capsys):
    data = copy.deepcopy(SMALL_STUDY)
    data["feeders"][0]["network"] = "case_nope"
    code, err = _cli_error(capsys, "run", _write(tmp_path, data), "--scheduler", "sync")
    assert code == 2 and "unknown network 'case_nope'" in err and len(err.splitlines()) == 1


def test_bad_cli_option_exit_code(capsys, tmp_path):
    code, err = _cli_error(capsys, "run", _write(tmp_path, SMALL_STUDY), "--workers", "0")
    assert code == 2 and "--workers" in err and len(err.splitlines()) == 1
    code, err = _cli_error(capsys, "opf", "case9", "--model", "acopf")
    assert code == 2 and "'acopf' is not one of 'dc', 'lindistflow'" in err


@given(
    alpha=st.floats(allow_nan=False, allow_infinity=False),
    beta=st.floats(allow_nan=False, allow_infinity=False),
)
def test_risk_parameters_validated(alpha, beta):
    data = {"risk": {"alpha": alpha, "beta": beta}}
    valid = 0.0 < alpha < 1.0 and 0.0 <= beta <= 1.0
    if valid:
        cfg = parse_study(data)
        assert cfg.risk.alpha == alpha and cfg.risk.beta == beta
    else:
        with pytest.raises(StudyConfigError, match=r"risk\.(alpha|beta)"):
            parse_study(data)


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), min_size=1, max_size=3))
def test_random_unknown_keys_are_rejected(extra):
    known = set(parse_study({}).model_fields)
    if set(extra) & known:
        return
    with pytest.raises(StudyConfigError, match=r"unknown key"):
        parse_study(extra)
