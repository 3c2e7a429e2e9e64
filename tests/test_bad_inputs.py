"""Every user mistake is one ``error:`` line naming the culprit, exit 2, before any work.

One table of bad inputs at the command line: study files, study keys, networks, options,
output and run folders. Each row asserts the exit code, that stderr is a single line and
that it names the key, file or option (and nothing is computed: no result file).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from workbench.cli import main

BASE = {
    "name": "bad",
    "start_hour": 10,
    "horizon_hours": 2,
    "transmission": {"network": "case9"},
    "feeders": [{"name": "f1", "network": "case33bw", "bus": "5", "share": 0.2}],
    "scenarios": {"n_scenarios": 2, "method": "profile_noise"},
}
RUN = ["--no-plots", "--no-progress", "--scheduler", "sync"]


def _merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _feeder(**changes) -> dict:
    return {"feeders": [{**BASE["feeders"][0], **changes}]}


def _network_json(tmp: Path, kind: str) -> Path:
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.case33bw()
    if kind == "zero_impedance":
        net.line.loc[3, ["r_ohm_per_km", "x_ohm_per_km"]] = 0.0
    elif kind == "negative_impedance":
        net.line.loc[3, "x_ohm_per_km"] = -0.2
    elif kind == "meshed":
        pp.create_line_from_parameters(net, 10, 20, 1.0, 0.1, 0.1, 0.0, 0.4)
    elif kind == "no_root":
        net.ext_grid.drop(net.ext_grid.index, inplace=True)
    path = tmp / f"{kind}.json"
    pp.to_json(net, str(path))
    return path


def _study(tmp: Path, content) -> Path:
    path = tmp / "study.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(yaml.safe_dump(_merge(BASE, content)))
    return path


def _run(content, *options: str):
    """Args of ``workbench run`` on a study built from ``content`` with ``options``."""

    def make(tmp: Path) -> list[str]:
        return ["run", str(_study(tmp, content)), "--out", str(tmp / "o.nc"), *RUN, *options]

    return make


def _net(kind: str):
    def make(tmp: Path) -> list[str]:
        path = _network_json(tmp, kind)
        return _run(_feeder(network=str(path), bus="5"))(tmp)

    return make


def _args(*args: str, setup=None):
    """Arbitrary args; ``{tmp}`` is the test's folder, ``{study}`` a valid study file."""

    def make(tmp: Path) -> list[str]:
        if setup is not None:
            setup(tmp)
        study = str(_study(tmp, {}))
        return [a.format(tmp=tmp, study=study) for a in args]

    return make


def _mkdir(*names: str, file: str | None = None, text: str = "mine"):
    def setup(tmp: Path) -> None:
        for name in names:
            (tmp / name).mkdir(parents=True, exist_ok=True)
        if file is not None:
            (tmp / file).write_text(text)

    return setup


def _partial(tmp: Path) -> None:
    """``tmp/m.nc``: a results file of the workbench that lacks most of its variables."""
    import xarray as xr

    ds = xr.Dataset(
        {"solver_status": ("model", ["optimal"]), "objective_eur": ("model", [1.0])},
        coords={"model": ["tso_managed"]},
        attrs={"study_config_yaml": yaml.safe_dump(BASE), "written_by": "workbench"},
    )
    ds.to_netcdf(tmp / "m.nc")


def _resume_of(out: str | None):
    """``workbench run --resume`` of an unfinished run folder ``tmp/r`` whose run was started
    with result file ``out`` (None: from Python, without one); ``out`` exists and was not
    written by that run."""

    def make(tmp: Path) -> list[str]:
        from cases import parse_study
        from workbench.rundir import RunFolder

        target = None if out is None else tmp / out
        if target is not None:
            target.write_text("somebody's results")
        folder = RunFolder.create(tmp / "r", parse_study(BASE, "bad"), 0, target)
        folder.release()
        return ["run", "--resume", str(tmp / "r"), *RUN]

    return make


def _liar_scheduler(tmp: Path) -> list[str]:
    """``--scheduler`` at a port that answers every connection with garbage bytes."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            conn, _ = server.accept()
            conn.sendall(b"\xff" * 64)

    threading.Thread(target=answer, daemon=True).start()
    port = server.getsockname()[1]
    return _run({}, "--scheduler", f"127.0.0.1:{port}")(tmp)


def _pv_csv(tmp: Path, problem: str) -> None:
    """``tmp/pv.csv``: quarter-hourly PV of 10-20 June 2019 (Berlin time) with ``problem``."""
    import numpy as np
    import pandas as pd

    times = pd.date_range("2019-06-10", "2019-06-21", freq="15min", inclusive="left")
    if problem == "step7":
        times = pd.date_range("2019-06-10", "2019-06-21", freq="7min", inclusive="left")
    if problem == "dst_gap":  # 02:00-02:59 of 31 March does not exist in Berlin
        times = pd.date_range("2019-03-30", "2019-04-02", freq="15min", inclusive="left")
    hours = times.hour + times.minute / 60.0
    values = 0.5 * np.clip(np.sin((hours.to_numpy() - 5.0) / 16.0 * np.pi), 0.0, None)
    text = list(times.strftime("%Y-%m-%d %H:%M"))
    if problem == "negative":
        values[50] = -0.1
    elif problem == "above_one":
        values[50] = 1.5
    elif problem == "nan":
        values[50] = np.nan
    elif problem == "bad_time":
        text[50] = "noon"
    frame = pd.DataFrame({"time": text, "p_pu": values})
    if problem == "gap":
        frame = frame.drop(index=[50, 51])
    (tmp / "pv.csv").write_text(frame.to_csv(index=False))


def _user(problem: str, *, start_date: str = "2019-06-15", **spec):
    """``workbench run`` of a study whose PV is ``tmp/pv.csv`` (path relative to the study)."""

    def make(tmp: Path) -> list[str]:
        _pv_csv(tmp, problem)
        pv = {"file": "pv.csv", "column": "p_pu", "time_zone": "Europe/Berlin", **spec}
        pv = {k: v for k, v in pv.items() if v is not None}
        return _run({"start_date": start_date, "forecast": {"sources": {"pv": pv}}})(tmp)

    return make


def _forecast_days(start_date: str):
    """``workbench forecast`` of a study on ``start_date`` with ENTSO-E PV."""

    def make(tmp: Path) -> list[str]:
        study = _study(
            tmp, {"start_date": start_date, "forecast": {"sources": {"pv": "entsoe_de"}}}
        )
        return ["forecast", str(study), "--out", str(tmp / "o.nc"), "--no-plots"]

    return make


def _run_dir(name: str, setup):
    """``workbench run`` of a valid study with ``--run-dir {tmp}/name`` after ``setup``."""
    return _args(
        "run", "{study}", "--out", "{tmp}/o.nc", "--run-dir", f"{{tmp}}/{name}", *RUN, setup=setup
    )


CASES = [
    # ---- the study file itself
    ("empty file", _run(b""), "is empty"),
    ("only comments", _run("# nothing here\n"), "is empty"),
    ("binary file", _run(b"\x00\x01\x02\xff binary"), "is binary"),
    ("latin-1 text", _run("name: caf\u00e9\n".encode("latin-1")), "not UTF-8"),
    ("yaml syntax", _run("name: [unclosed\n"), "line"),
    ("yaml tab", _run("name: bad\n\tseed: 1\n"), "line"),
    ("a list", _run("- a\n- b\n"), "mapping"),
    ("a scalar", _run("42\n"), "mapping"),
    ("missing file", _args("run", "{tmp}/nope.yaml", *RUN), "nope.yaml"),
    ("study is a folder", _args("run", "{tmp}", *RUN), "is a folder"),
    ("unknown study name", _args("run", "no_such_study", *RUN), "no_such_study"),
    # ---- top-level keys
    ("unknown key", _run({"sed": 1}), "sed"),
    ("empty name", _run({"name": ""}), "name"),
    ("name with a slash", _run({"name": "a/b"}), "name"),
    ("negative seed", _run({"seed": -1}), "seed"),
    ("text seed", _run({"seed": "abc"}), "seed"),
    ("bad month", _run({"start_date": "2016-13-01"}), "start_date"),
    ("not a date", _run({"start_date": "yesterday"}), "start_date"),
    ("date after the data", _run({"start_date": "2030-01-01"}), "start_date"),
    ("date before the data", _run({"start_date": "2010-01-01"}), "start_date"),
    (
        "date after ENTSO-E",
        _run({"start_date": "2021-06-15", "forecast": {"sources": {"pv": "entsoe_de"}}}),
        "'entsoe_de' (pv) covers 2017-01-01 .. 2020-12-31",
    ),
    (
        "days run past ENTSO-E",
        _run(
            {"start_date": "2020-12-30", "n_days": 3, "forecast": {"sources": {"pv": "entsoe_de"}}}
        ),
        "start_date 2020-12-30 .. 2021-01-01",
    ),
    (
        "too early to train",
        _run(
            {
                "start_date": "2017-01-10",
                "scenarios": {"method": "forecast"},
                "forecast": {"sources": {"pv": "entsoe_de"}},
            }
        ),
        "too early to train",
    ),
    ("forecast after the data", _forecast_days("2021-06-15"), "start_date 2021-06-15"),
    ("forecast too early to train", _forecast_days("2017-01-20"), "too early to train"),
    # ---- user series
    ("user series missing file", _user("ok", file="nope.csv"), "nope.csv"),
    ("user series unknown column", _user("ok", column="power"), "no column 'power'"),
    ("user series unknown time zone", _user("ok", time_zone="Mars/Olympus"), "Mars/Olympus"),
    ("user series without time zone", _user("ok", time_zone=None), "time_zone"),
    ("user series unknown key", _user("ok", unit="kW"), "unit"),
    ("user series negative pv", _user("negative"), "negative pv value"),
    ("user series above capacity", _user("above_one"), "exceeds 1"),
    ("user series nan", _user("nan"), "NaN"),
    ("user series gap", _user("gap"), "gap or irregular step"),
    ("user series 7-min step", _user("step7"), "does not divide a day"),
    ("user series bad time", _user("bad_time"), "'noon' is not a date"),
    ("user series missing dst hour", _user("dst_gap", start_date="2019-03-31"), "Europe/Berlin"),
    ("user series not covering the day", _user("ok", start_date="2019-07-15"), "pv.csv"),
    ("zero days", _run({"n_days": 0}), "n_days"),
    ("negative days", _run({"n_days": -3}), "n_days"),
    ("fractional days", _run({"n_days": 1.5}), "n_days"),
    ("zero horizon", _run({"horizon_hours": 0}), "horizon_hours"),
    ("two-day horizon", _run({"horizon_hours": 48}), "horizon_hours"),
    ("hour 24", _run({"start_hour": 24}), "start_hour"),
    ("negative hour", _run({"start_hour": -1}), "start_hour"),
    ("past midnight", _run({"start_hour": 20, "horizon_hours": 8}), "midnight"),
    ("no models", _run({"models": []}), "models"),
    ("unknown model", _run({"models": ["centralised"]}), "centralised"),
    ("model as text", _run({"models": "tso_managed"}), "models"),
    # ---- transmission
    ("unknown case", _run({"transmission": {"network": "case999"}}), "case999"),
    ("transmission as text", _run({"transmission": "case9"}), "transmission"),
    ("unknown unit", _run({"transmission": {"technologies": {"gen/99": "ccgt"}}}), "gen/99"),
    ("unknown technology", _run({"transmission": {"technologies": {"gen/0": "fusion"}}}), "fusion"),
    (
        "infinite marginal cost",
        _run({"transmission": {"marginal_cost_eur_per_mwh": {"gen/0": float("inf")}}}),
        "gen/0",
    ),
    ("unknown transmission key", _run({"transmission": {"netwrok": "case9"}}), "netwrok"),
    (
        "SimBench transmission",
        _run({"transmission": {"network": "simbench:1-HV-mixed--0-sw"}}),
        "feeders only",
    ),
    # ---- feeders
    ("feeders as mapping", _run({"feeders": {"name": "f1"}}), "feeders"),
    ("feeder without bus", _run({"feeders": [{"name": "f1", "network": "case33bw"}]}), "bus"),
    ("feeder on unknown bus", _run(_feeder(bus="999")), "999"),
    ("unknown feeder network", _run(_feeder(network="nowhere")), "nowhere"),
    ("unknown SimBench code", _run(_feeder(network="simbench:1-MV-nowhere--0-sw")), "nowhere"),
    ("unknown bare SimBench code", _run(_feeder(network="1-MV-rurl--0-sw")), "SimBench code"),
    ("missing network file", _run(_feeder(network="missing.json")), "missing.json"),
    ("zero share", _run(_feeder(share=0)), "share"),
    ("share above one", _run(_feeder(share=1.5)), "share"),
    ("negative share", _run(_feeder(share=-0.1)), "share"),
    ("vm_min above one", _run(_feeder(vm_min_pu=1.2)), "vm_min_pu"),
    ("vm_max below one", _run(_feeder(vm_max_pu=0.9)), "vm_max_pu"),
    ("band narrower than margin", _run(_feeder(vm_min_pu=0.999, vm_max_pu=1.001)), "margin"),
    ("duplicate feeder names", _run({"feeders": [BASE["feeders"][0]] * 2}), "f1"),
    ("feeder name with space", _run(_feeder(name="a b")), "name"),
    ("unknown line rating", _run(_feeder(line_max_i_ka={999: 0.1})), "999"),
    ("zero line rating", _run(_feeder(line_max_i_ka={3: 0})), "line_max_i_ka"),
    ("negative line rating", _run(_feeder(line_max_i_ka={3: -1})), "line_max_i_ka"),
    ("negative line index", _run(_feeder(line_max_i_ka={-1: 0.1})), "line_max_i_ka"),
    ("negative PV size", _run(_feeder(der={"pv": {"kwp_per_kw_load": -1}})), "kwp_per_kw_load"),
    ("negative battery count", _run(_feeder(der={"battery": {"buses": -1}})), "buses"),
    ("unknown charger type", _run(_feeder(der={"ev": {"charger_type": "moon"}})), "charger_type"),
    ("unknown DER kind", _run(_feeder(der={"solar": {}})), "solar"),
    ("zero-impedance line", _net("zero_impedance"), "zero impedance"),
    ("negative reactance", _net("negative_impedance"), "line 3"),
    ("meshed feeder", _net("meshed"), "meshed"),
    ("feeder without root", _net("no_root"), "ext_grid"),
    # ---- resolution, scenarios, risk
    ("first stage 7 min", _run({"resolution": {"first_stage_minutes": 7}}), "first_stage"),
    ("second stage 0", _run({"resolution": {"second_stage_minutes": 0}}), "second_stage"),
    ("second stage 45", _run({"resolution": {"second_stage_minutes": 45}}), "second_stage"),
    (
        "first stage not a multiple of the second",
        _run({"resolution": {"first_stage_minutes": 45, "second_stage_minutes": 30}}),
        "first_stage_minutes one of 30, 60, 120",
    ),
    (
        "second stage coarser than the first",
        _run({"resolution": {"first_stage_minutes": 30, "second_stage_minutes": 60}}),
        "second_stage_minutes one of 5, 15, 30",
    ),
    (
        "first stage periods do not tile the horizon",
        _run({"resolution": {"first_stage_minutes": 90, "second_stage_minutes": 30}}),
        "does not divide the 2-h horizon",
    ),
    (
        "first stage longer than the horizon",
        _run({"resolution": {"first_stage_minutes": 240}}),
        "first_stage_minutes one of 15, 30, 60, 120",
    ),
    ("no scenarios", _run({"scenarios": {"n_scenarios": 0}}), "n_scenarios"),
    ("negative scenarios", _run({"scenarios": {"n_scenarios": -2}}), "n_scenarios"),
    ("unknown scenario method", _run({"scenarios": {"method": "magic"}}), "method"),
    ("negative PV sigma", _run({"scenarios": {"pv_sigma": -0.5}}), "pv_sigma"),
    ("alpha above one", _run({"risk": {"alpha": 1.5}}), "alpha"),
    ("negative alpha", _run({"risk": {"alpha": -0.1}}), "alpha"),
    ("beta above one", _run({"risk": {"beta": 2}}), "beta"),
    ("text beta", _run({"risk": {"beta": "high"}}), "beta"),
    ("misspelt risk key", _run({"risk": {"alpah": 0.5}}), "alpah"),
    # ---- prices
    ("infinite VOLL", _run({"prices": {"voll_eur_per_mwh": float("inf")}}), "voll_eur_per_mwh"),
    ("absurd VOLL", _run({"prices": {"voll_eur_per_mwh": 1e300}}), "voll_eur_per_mwh"),
    ("NaN spill price", _run({"prices": {"spill_eur_per_mwh": float("nan")}}), "spill"),
    ("negative VOLL", _run({"prices": {"voll_eur_per_mwh": -10}}), "voll_eur_per_mwh"),
    ("negative deviation price", _run({"prices": {"deviation_eur_per_mwh": -1}}), "deviation"),
    (
        "VOLL below emergency",
        _run({"prices": {"voll_eur_per_mwh": 100, "ter_emergency_eur_per_mwh": 200}}),
        "voll",
    ),
    # ---- model, AC check, coordination
    ("unknown storage state", _run({"model": {"storage_state": "frozen"}}), "storage_state"),
    ("unknown LP method", _run({"model": {"lp_method": "quantum"}}), "lp_method"),
    ("AC every 0 steps", _run({"ac_check": {"every_n_steps": 0}}), "every_n_steps"),
    ("AC 0 scenarios", _run({"ac_check": {"max_scenarios": 0}}), "max_scenarios"),
    ("AC enabled maybe", _run({"ac_check": {"enabled": "maybe"}}), "enabled"),
    ("two directions", _run({"coordination": {"dso": {"directions": 2}}}), "directions"),
    # ---- options of `workbench run`
    ("zero workers", _run({}, "--workers", "0"), "--workers"),
    ("text workers", _run({}, "--workers", "abc"), "--workers"),
    ("negative seed option", _run({}, "--seed", "-1"), "--seed"),
    ("unknown model option", _run({}, "--models", "foo"), "--models"),
    ("empty model list", _run({}, "--models", ","), "--models"),
    ("scheduler with space", _run({}, "--scheduler", "foo bar"), "--scheduler"),
    ("nothing at scheduler", _run({}, "--scheduler", "tcp://127.0.0.1:1"), "127.0.0.1:1"),
    ("unknown option", _run({}, "--fast"), "--fast"),
    ("output .txt", _args("run", "{study}", "--out", "{tmp}/o.txt", *RUN), ".nc"),
    (
        "output is a folder",
        _args("run", "{study}", "--out", "{tmp}/d.nc", *RUN, setup=_mkdir("d.nc")),
        "is a folder",
    ),
    (
        "output zarr over a folder",
        _args(
            "run", "{study}", "--out", "{tmp}/d.zarr", *RUN, setup=_mkdir("d.zarr", file="d.zarr/x")
        ),
        "not a results store",
    ),
    (
        "run dir is a file",
        _run_dir("f", _mkdir(file="f")),
        "is a file",
    ),
    (
        "run dir is someone's folder",
        _run_dir("mine", _mkdir("mine", file="mine/notes.txt")),
        "not a run folder",
    ),
    ("resume a missing folder", _args("run", "--resume", "{tmp}/gone", *RUN), "does not exist"),
    (
        "resume a file",
        _args("run", "--resume", "{tmp}/f", *RUN, setup=_mkdir(file="f")),
        "is not a folder",
    ),
    (
        "resume a foreign folder",
        _args("run", "--resume", "{tmp}/mine", *RUN, setup=_mkdir("mine")),
        "manifest.json",
    ),
    (
        "resume a garbled manifest",
        _args(
            "run", "--resume", "{tmp}/r", *RUN, setup=_mkdir("r", file="r/manifest.json", text="{")
        ),
        "unreadable manifest",
    ),
    ("resume with a seed", _args("run", "--resume", "{tmp}", "--seed", "3", *RUN), "--seed"),
    # ---- YAML that the parser alone would get wrong
    ("unquoted invalid date", _run("name: bad\nstart_date: 2016-02-30\n"), "start_date"),
    ("a section twice", _run("name: bad\nrisk: {beta: 0.2}\nrisk: {alpha: 0.5}\n"), "'risk'"),
    ("a key twice", _run("name: bad\nrisk:\n  beta: 0.2\n  beta: 0.3\n"), "'beta' is given twice"),
    ("yes/no as a count", _run({"scenarios": {"n_scenarios": True}}), "n_scenarios"),
    ("yes/no as a price", _run({"prices": {"voll_eur_per_mwh": True}}), "voll_eur_per_mwh"),
    ("name '.'", _run({"name": "."}), "name"),
    ("name '..'", _run({"name": ".."}), "name"),
    ("hidden name", _run({"name": ".hidden"}), "name"),
    ("long non-ASCII name", _run({"name": "\u00fc" * 100}), "bytes"),
    # ---- run folders and results files a run did not make
    ("resume a run started without --out", _resume_of(out=None), "--out"),
    ("resume onto a file it did not write", _resume_of(out="x.nc"), "did not write"),
    ("scheduler that sends bytes", _liar_scheduler, "not as a Dask scheduler"),
    # ---- other commands
    ("compare a missing file", _args("compare", "{tmp}/none.nc"), "none.nc"),
    ("compare lacking variables", _args("compare", "{tmp}/m.nc", setup=_partial), "weight"),
    ("evaluate lacking variables", _args("evaluate", "{tmp}/m.nc", setup=_partial), "weight"),
    ("forecast step 0", _args("forecast", "{study}", "--test-day-step", "0"), "--test-day-step"),
    ("opf unknown case", _args("opf", "case999"), "case999"),
    (
        "flexibility 2 directions",
        _args("flexibility", "case33bw", "--directions", "2"),
        "--directions",
    ),
    ("unknown command", _args("simulate"), "simulate"),
]


def test_the_table_has_at_least_80_rows():
    assert len(CASES) >= 80
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("make", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_naming_the_culprit(tmp_path, capsys, make, needle):
    args = make(tmp_path)
    code = main(args)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert needle.lower() in lines[0].lower(), lines[0]
    assert not (tmp_path / "o.nc").exists()
    assert not list(tmp_path.glob("*.run")), "a run folder was created for a bad input"
    json.dumps(lines)  # printable
