"""What a run tells its user: ``--version``, quiet stderr, progress per phase, the log file."""

from __future__ import annotations

import copy
import io
import logging
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from tests.conftest import SMALL_STUDY
from workbench.cli import main
from workbench.console import (
    Phase,
    known_noise_filtered,
    library_logs_collected,
    library_logs_to,
    versions,
)

ROOT = Path(__file__).resolve().parents[1]


def test_version_names_the_package_and_its_key_dependencies(capsys):
    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert 1 <= len(lines) <= 2
    v = versions()
    assert lines[0].startswith(f"workbench {v['tsodso-workbench']}")
    for name in ("numpy", "pyomo", "highspy", "pandapower", "dask", "xarray"):
        assert f"{name} {v[name]}" in lines[-1], name


def test_a_phase_is_one_line_without_a_terminal_and_always_in_the_log():
    stream, records = io.StringIO(), []
    log = logging.getLogger("test.phase")
    log.addHandler(_ListHandler(records))
    log.setLevel(logging.INFO)
    with Phase("scheduling", 3, "units", log=log, stream=stream) as phase:
        phase.update(failed=0)
        phase.update(failed=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scheduling: 2 of 3 units, 1 failed (")
    quiet = io.StringIO()
    with Phase("AC check", 4, "power flows", enabled=False, log=log, stream=quiet) as phase:
        phase.update(4)
    assert quiet.getvalue() == ""  # --no-progress: nothing on the terminal
    assert [r.startswith(("scheduling: 2 of 3", "AC check: 4 of 4")) for r in records] == [
        True,
        True,
    ]


class _ListHandler(logging.Handler):
    def __init__(self, records: list) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def test_known_noise_is_filtered_by_category_message_and_module():
    port = "Port 8787 is already in use.\nPerhaps you already have a cluster running?"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with known_noise_filtered():
            warnings.warn_explicit(port, UserWarning, "node.py", 1, module="distributed.node")
            # the same words from elsewhere, or another distributed warning, still show
            warnings.warn_explicit(port, UserWarning, "mine.py", 1, module="mine")
            warnings.warn_explicit("worker died", UserWarning, "n.py", 1, module="distributed.x")
            warnings.warn_explicit(port, RuntimeWarning, "node.py", 1, module="distributed.node")
    assert [(str(w.message)[:11], w.category) for w in caught] == [
        (port[:11], UserWarning),
        ("worker died", UserWarning),
        (port[:11], RuntimeWarning),
    ]


def test_pandapower_records_go_to_the_run_log(capsys, monkeypatch):
    monkeypatch.setattr(logging.getLogger("pandapower"), "level", logging.WARNING)
    records: list[str] = []
    log = logging.getLogger("test.runlog")
    log.addHandler(_ListHandler(records))
    log.propagate = False
    with library_logs_to(log):
        logging.getLogger("pandapower.auxiliary").warning("numba cannot be imported")
    with library_logs_collected() as notes:
        logging.getLogger("pandapower.opf").error("OPF did not converge")
        logging.getLogger("pandapower.opf").info("a detail")
    assert records == ["pandapower.auxiliary: numba cannot be imported"]
    assert notes == ["pandapower.opf: OPF did not converge"]
    assert logging.getLogger("pandapower").propagate  # restored
    assert "pandapower" not in capsys.readouterr().err


def _cli_run(
    tmp_path: Path, ac_check: dict, *options: str
) -> tuple[subprocess.CompletedProcess, Path]:
    """``workbench run`` of the small study (observed-profile scenarios, few power flows)
    in a subprocess whose stderr is a pipe, not a terminal."""
    study = copy.deepcopy(SMALL_STUDY)
    study["scenarios"] = {"n_scenarios": 4, "pv_sigma": 0.4, "method": "profile_noise"}
    study["ac_check"] = ac_check
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "small.nc"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["run", str(path), "--out", str(out), "--no-plots", "--scheduler", "sync", *options]
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, out.with_suffix(".log")


@pytest.fixture(scope="module")
def run_with_ac(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ac")
    return _cli_run(tmp, {"every_n_steps": 16, "max_scenarios": 2})


@pytest.mark.slow
def test_a_run_is_quiet_and_says_its_phases(run_with_ac):
    proc, _ = run_with_ac
    err = proc.stderr.splitlines()
    assert not [line for line in err if "Warning" in line], err
    assert not [line for line in err if "pandapower" in line.lower()], err
    assert not [line for line in err if "Traceback" in line], err
    # one line per phase (stderr is no terminal), with counts
    assert [line.split(":")[0] for line in err if line.startswith(("scheduling", "AC check"))] == [
        "scheduling",
        "AC check",
    ]
    assert any(line.startswith("scheduling: 1 of 1 units, 0 failed") for line in err), err
    # 16 steps of 15 min in the horizon, every 16th: 1 step of 2 scenarios
    assert any(line.startswith("AC check: 2 of 2 power flows") for line in err), err
    # the only warning is one a user can act on, in one line
    warned = [line for line in err if line.startswith("warning:")]
    assert len(warned) == 1 and "CVaR tail" in warned[0]


@pytest.mark.slow
def test_the_log_file_lies_beside_the_results(run_with_ac):
    proc, log = run_with_ac
    assert f"log:     {log}" in proc.stdout
    text = log.read_text()
    assert "versions: tsodso-workbench" in text and "pandapower" in text
    assert "study 'small'" in text and "start_date: '2016-06-15'" in text
    for phase in ("scheduling: 1 of 1 units", "AC check: 2 of 2 power flows"):
        assert phase in text, phase
    assert "CvarTailWarning" in text  # every warning is in the log
    assert "unit tso_managed_2016-06-15: optimal" in text
    run_log = log.with_suffix(".run") / "run.log"
    assert run_log.read_text() == text  # the run folder keeps its own


def test_without_the_ac_check_nothing_says_ac_check(tmp_path):
    """Also the fast stand-in for the two slow tests above: quiet stderr, the log file."""
    proc, log = _cli_run(tmp_path, {"enabled": False}, "--verbose")
    for text in (proc.stdout, proc.stderr, log.read_text()):
        assert "AC check:" not in text and "power flows" not in text
    err = proc.stderr.splitlines()
    assert not [line for line in err if "Warning" in line and "CvarTail" not in line], err
    notes = [line for line in err if not line.startswith("log: versions:")]  # --verbose
    assert not [line for line in notes if "pandapower" in line.lower()], err
    assert [line for line in err if line.startswith("warning:")] == [
        line for line in err if line.startswith("warning:") and "CVaR tail" in line
    ]
    assert "scheduling: 1 of 1 units" in proc.stderr
    text = log.read_text()
    assert "versions: tsodso-workbench" in text and "scheduling: 1 of 1 units" in text
    # --verbose: the unit's line with its solver summary
    assert "log: unit tso_managed_2016-06-15: optimal" in proc.stderr
    assert "HiGHS" in proc.stderr


def test_the_dashboard_link_is_printed_and_a_busy_port_is_no_warning():
    from workbench.runner import resolve_scheduler

    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        except OSError:
            pass  # something already holds the port: the same situation
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with resolve_scheduler(None, workers=1, dashboard=True) as ex:
                link = ex.dashboard_link
    assert link and link.startswith("http://127.0.0.1:") and ":8787/" not in link
    assert not [w for w in caught if "already in use" in str(w.message)]


def test_building_a_study_from_python_leaves_stderr_empty():
    """pandapower's note about case39's generator set-points above their bus limits says
    nothing about the DC model it was logged for; a fresh Python process prints nothing."""
    code = (
        "from cases.study import load_study\n"
        "from cases.system import build_system\n"
        "build_system(load_study('default'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
