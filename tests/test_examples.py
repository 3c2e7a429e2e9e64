"""The worked examples in ``examples/`` run and their own assertions hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_example(name: str, tmp_path: Path) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_run_study_example(tmp_path):
    out = _run_example("run_study.py", tmp_path)
    assert "expected cost" in out and "CVaR" in out
    assert (tmp_path / "congested_small.nc").stat().st_size > 10_000


@pytest.mark.slow
def test_beta_sweep_example(tmp_path):
    out = _run_example("beta_sweep.py", tmp_path)
    assert out.count("\n") >= 6  # header and one line per beta
    assert (tmp_path / "beta_sweep.png").stat().st_size > 5_000


@pytest.mark.slow
def test_compare_models_example(tmp_path):
    out = _run_example("compare_models.py", tmp_path)
    assert "objective_gap_to_centralised_eur" in out
    assert (tmp_path / "congested_models.nc").stat().st_size > 10_000


@pytest.mark.slow
def test_walkthrough_notebook(tmp_path):
    out = _run_example("walkthrough.py", tmp_path)
    assert "tso_managed" in out and "hybrid" in out and "E[cost]" in out  # the summary
    assert (tmp_path / "walkthrough.nc").stat().st_size > 10_000
    assert (tmp_path / "walkthrough_dispatch.png").stat().st_size > 5_000


def test_walkthrough_is_a_percent_notebook():
    """Jupytext's percent format: cells start with ``# %%``, prose cells are Markdown."""
    text = (ROOT / "examples" / "walkthrough.py").read_text()
    cells = re.split(r"^# %%", text, flags=re.M)[1:]
    prose = [c for c in cells if c.startswith(" [markdown]")]
    assert len(prose) >= 6 and len(cells) - len(prose) >= 6
    assert "# # Walkthrough" in prose[0]
    assert all(line.startswith("#") or not line for c in prose for line in c.splitlines()[1:])


def test_examples_have_a_docs_page_that_includes_them():
    pages = "\n".join(p.read_text() for p in (ROOT / "docs" / "examples").glob("*.md"))
    for script in sorted((ROOT / "examples").glob("*.py")):
        included = f'--8<-- "examples/{script.name}"' in pages  # the script as code
        shown = f"<!-- notebook: examples/{script.name} -->" in pages  # a notebook's cells
        assert included or shown, script.name
