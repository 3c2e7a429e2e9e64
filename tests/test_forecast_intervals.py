"""Skill scores of the forecast evaluation carry bootstrap intervals; small samples warn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecasts.evaluate import (
    SKILL_SCORES,
    ResourceScores,
    bootstrap_skill,
    evaluate_source,
    scores_table,
    small_sample_warning,
)


def test_bootstrap_interval_covers_a_known_skill():
    """Daily scores around 0.8 of a reference of 1: the true skill is 0.2; the 95 %
    interval of 30-day samples covers it in about 95 % of repetitions."""
    rng = np.random.default_rng(11)
    truth, covered, trials = 0.2, 0, 200
    for i in range(trials):
        score = rng.normal(1.0 - truth, 0.15, 30)
        lo, hi = bootstrap_skill(score, np.ones(30), seed=i)
        covered += lo <= truth <= hi
    assert 0.88 <= covered / trials <= 0.99


def test_bootstrap_limiting_cases():
    ref = np.array([2.0, 1.0, 4.0, 3.0])
    # every day has the same ratio: no uncertainty, the interval is the point
    lo, hi = bootstrap_skill(0.5 * ref, ref)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    # one day: nothing to resample
    assert bootstrap_skill([0.3], [1.0]) == pytest.approx((0.7, 0.7))
    # the same seed gives the same interval; more days give a narrower one
    rng = np.random.default_rng(3)
    score = rng.normal(0.8, 0.2, 400)
    few = bootstrap_skill(score[:10], np.ones(10), seed=1)
    many = bootstrap_skill(score, np.ones(400), seed=1)
    assert few == bootstrap_skill(score[:10], np.ones(10), seed=1)
    assert many[1] - many[0] < 0.5 * (few[1] - few[0])
    # blocks of days: still a valid interval around the point
    lo, hi = bootstrap_skill(score, np.ones(400), block_days=7, seed=1)
    assert lo < 1.0 - score.mean() < hi
    with pytest.raises(ValueError, match="equally long"):
        bootstrap_skill([1.0, 2.0], [1.0])


_LOAD_1H = {"source": "simbench_load_transmission", "horizon": "1h", "max_iter": 10}


@pytest.fixture(scope="module")
def load_1h():
    """One-hour-ahead transmission load scored on every 28th held-out day (4 days)."""
    return evaluate_source(test_day_step=28, **_LOAD_1H)[0]


def _contain_their_points(s: ResourceScores) -> None:
    assert set(s.skill_intervals) == {"crps_skill_vs_climatology", "crps_skill_vs_persistence"}
    for name, (lo, hi) in s.skill_intervals.items():
        assert lo <= s.skills()[name] <= hi, name


def test_intervals_contain_the_point_and_are_in_the_record(load_1h):
    few = load_1h
    assert few.n_days < 30
    _contain_their_points(few)
    record = json.loads(json.dumps(few.as_dict()))
    assert record["skill_intervals"]["crps_skill_vs_climatology"] == list(
        few.skill_intervals["crps_skill_vs_climatology"]
    )
    assert record["skill_interval_level"] == 0.95


def test_intervals_shrink_with_more_days(load_1h):
    every, _ = evaluate_source(test_day_step=1, **_LOAD_1H)
    assert every.n_days >= 30
    _contain_their_points(every)
    for name in load_1h.skill_intervals:
        width_few = np.subtract(*load_1h.skill_intervals[name][::-1])
        width_every = np.subtract(*every.skill_intervals[name][::-1])
        assert width_few > width_every, name


def test_small_sample_warning(load_1h):
    few = load_1h
    message = small_sample_warning({"load_1h": few})
    assert message is not None and "\n" not in message
    assert f"{few.n_days} held-out days" in message and "uncertain" in message
    # a large sample whose intervals exclude 0 is quiet; one that straddles 0 is not
    sure = ResourceScores(0.5, 1.0, 2.0, 0.8, [0.1] * 10, 60)
    sure.skill_intervals = {"crps_skill_vs_climatology": (0.4, 0.6)}
    assert small_sample_warning({"x": sure}) is None
    sure.skill_intervals["crps_skill_vs_persistence"] = (-0.1, 0.3)
    assert "1 include 0" in small_sample_warning({"x": sure})


def test_cli_evaluation_warns_and_writes_intervals(load_1h, tmp_path, capsys, monkeypatch):
    """``forecast --evaluate --json`` on a small sample: one warning line, intervals in the JSON
    and in the scores file (the evaluation itself is the fixture's, to stay fast)."""
    import xarray as xr

    import workbench.forecasting as forecasting
    from workbench.cli import main

    few = load_1h
    monkeypatch.setattr(forecasting, "evaluate_all", lambda **kw: ({"load_1h": few}, {}))
    out = tmp_path / "scores.nc"
    args = ["forecast", "--evaluate", "--test-day-step", "28", "--json", "--no-plots"]
    assert main([*args, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "uncertain" in warnings[0]
    record = json.loads(captured.out)["load_1h"]
    for name in ("crps_skill_vs_climatology", "crps_skill_vs_persistence"):
        lo, hi = record["skill_intervals"][name]
        assert lo <= record[name] <= hi
    with xr.open_dataset(out) as ds:
        assert float(ds["crps_skill_vs_climatology_low"][0]) == pytest.approx(
            few.skill_intervals["crps_skill_vs_climatology"][0]
        )
        assert np.isnan(float(ds["energy_score_skill_vs_climatology_high"][0]))
    assert set(SKILL_SCORES) <= set(record) | {"energy_score_skill_vs_climatology"}


def test_score_tables_stay_aligned_with_long_keys_and_missing_scores():
    """The tables are pandas' text tables: the columns line up whatever the keys' length,
    a missing score or interval is a dash, never 'nan'."""
    sure = ResourceScores(0.5, 1.0, 2.0, 0.8, [0.1] * 10, 60, energy_score=1.2)
    sure.skill_intervals = {"crps_skill_vs_climatology": (0.4, 0.6)}
    other = ResourceScores(0.05, 0.1, 0.2, 0.75, [0.1] * 10, 14, extra={"units": "MW"})
    text = scores_table({"pv": sure, "scheduler_load_residential": other})
    assert "nan" not in text
    for block in text.split("\n\n"):
        lines = block.splitlines()
        assert len(lines) == 3 and len({len(line) for line in lines}) == 1, block
        days_end = lines[0].index("days") + len("days")  # right-aligned under their head
        assert [line[days_end - 2 : days_end] for line in lines[1:]] == ["60", "14"], block
    scores, skills = (b.splitlines() for b in text.split("\n\n"))
    assert scores[2].split()[:2] == ["scheduler_load_residential", "0.0500"]
    assert skills[0].startswith("skill") and "+50.0% [+40.0%, +60.0%]" in skills[1]
