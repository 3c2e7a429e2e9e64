"""Forecast quality and cost: the full out-of-sample evaluation and scenario generation.

Usage::

    python benchmarks/bench_forecasts.py [--test-day-step N] [--json FILE]

Part 1 runs :func:`forecasts.evaluate.evaluate_all` with the default settings (every
held-out day unless ``--test-day-step``) and prints, per resource, the CRPS ratios to
climatology and persistence, the 10-90 % coverage, the energy-score ratios of the copula to
independent sampling and the energy-score increase of the reduced set (500 -> 10: energy
selection, fast forward, and the expectation for 10 random draws), and whether each
forecast quality target (``_targets``) is met. Part 2 times fitting the default study's five
forecasters and drawing one day of scenarios at 5, 15, 30 and 60 min. Each part runs in
its own process, so the peak resident memory printed is per part.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _evaluation(step: int, queue) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from forecasts.evaluate import evaluate_all

    tick = time.perf_counter()
    marks: dict[str, float] = {}

    def progress(key: str) -> None:
        marks[key] = time.perf_counter()

    scores, _ = evaluate_all(test_day_step=step, progress=progress)
    keys = list(marks)
    ends = [*(marks[k] for k in keys[1:]), time.perf_counter()]
    seconds = {k: end - marks[k] for k, end in zip(keys, ends, strict=True)}
    queue.put(
        {
            "scores": {k: s.as_dict() for k, s in scores.items()},
            "seconds": seconds,
            "total_seconds": time.perf_counter() - tick,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _generation(queue) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from cases.study import load_study
    from forecasts.generate import forecast_scenarios
    from workbench.scenarios import fit_study_forecaster

    study = load_study("default")
    tick = time.perf_counter()
    fc = fit_study_forecaster(study, study.seed)
    fit_s = time.perf_counter() - tick
    tick = time.perf_counter()
    forecast_scenarios(
        fc, study.start_date, 10, seed=1, n_samples=500, resolutions_minutes=(5, 15, 30, 60)
    )
    queue.put(
        {
            "fit_seconds": fit_s,
            "scenario_day_seconds": time.perf_counter() - tick,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def _targets(s: dict) -> list[tuple[str, bool]]:
    pv, pv1 = s["pv"], s["pv_1h"]
    checks = [
        (f"coverage 10-90 of {k} in 75-85 %", 0.75 <= s[k]["coverage_10_90"] <= 0.85) for k in s
    ]
    checks += [
        ("day-ahead PV CRPS <= climatology", pv["crps"] <= pv["crps_climatology"]),
        ("1 h PV CRPS skill vs climatology >= 30 %", pv1["crps_skill_vs_climatology"] >= 0.3),
    ]
    for k in ("pv", "load", "ev"):
        checks.append(
            (
                f"{k}: copula ES < independent ES",
                s[k]["energy_score"] < s[k]["energy_score_independent"],
            )
        )
        checks.append(
            (
                f"{k}: reduction 500 -> 10 raises ES < 5 %",
                s[k]["reduction_energy_score_increase"] < 0.05,
            )
        )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-day-step", type=int, default=1)
    parser.add_argument("--json", default=None, help="Also write the figures to this file.")
    args = parser.parse_args()

    ev = _run(_evaluation, args.test_day_step)
    s = ev["scores"]
    print(
        f"evaluation (test_day_step {args.test_day_step}): {ev['total_seconds']:.0f} s, "
        f"peak RSS {ev['peak_rss_mib']:.0f} MiB"
    )
    print(
        f"{'':8} {'days':>5} {'CRPS':>8} {'/clim':>6} {'/pers':>6} {'cov':>6} "
        f"{'ES/ind':>7} {'ES/clim':>7} {'red.ES':>7} {'ffs':>7} {'draws':>7} {'VS/ind':>7} "
        f"{'sec':>6}"
    )
    for k, v in s.items():

        def ratio(a: str, b: str, v=v) -> str:
            return f"{v[a] / v[b]:7.3f}" if v.get(a) is not None else f"{'-':>7}"

        def pct(key: str, v=v) -> str:
            x = v.get(key)
            return f"{'-':>7}" if x is None else f"{x:+7.1%}"

        print(
            f"{k:8} {v['n_days']:5d} {v['crps']:8.4f} {v['crps'] / v['crps_climatology']:6.3f} "
            f"{v['crps'] / v['crps_persistence']:6.3f} {v['coverage_10_90']:6.1%} "
            f"{ratio('energy_score', 'energy_score_independent')} "
            f"{ratio('energy_score', 'energy_score_climatology')} "
            f"{pct('reduction_energy_score_increase')} "
            f"{pct('reduction_energy_score_increase_fast_forward')} "
            f"{pct('reduction_energy_score_increase_random_draws')} "
            f"{ratio('variogram_score', 'variogram_score_independent')} "
            f"{ev['seconds'][k]:6.0f}"
        )
    print("targets:")
    for name, ok in _targets(s):
        print(f"  [{'met' if ok else 'MISSED'}] {name}")

    gen = _run(_generation)
    print(
        f"default study: fit 5 forecasters {gen['fit_seconds']:.1f} s, one day of 500 -> 10 "
        f"scenarios at 5/15/30/60 min {gen['scenario_day_seconds']:.2f} s, peak RSS "
        f"{gen['peak_rss_mib']:.0f} MiB"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"evaluation": ev, "generation": gen}, fh, indent=1)


if __name__ == "__main__":
    main()
