"""Installing the workbench: the wheel carries every file the packages read, works in a fresh
virtual environment outside the checkout, and ``environment.yml`` asks for the same
dependencies as ``pyproject.toml``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cases", "forecasts", "stochastic", "workbench")

#: conda-forge names of the PyPI distributions whose names differ there
CONDA_NAMES = {"pvlib": "pvlib-python", "igraph": "python-igraph"}


def _tracked(*paths: str) -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    done = subprocess.run(
        ["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built with pip from a copy of the tracked files (the checkout stays clean)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in _tracked("."):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is skipped
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = tmp.glob("tsodso_workbench-*.whl")
    return path


def test_wheel_holds_every_file_of_the_packages(wheel):
    """Data (networks' profiles, forecast history, EV statistics, studies), the lazy-import
    stubs and the code: everything tracked in the packages, nothing left behind."""
    names = set(zipfile.ZipFile(wheel).namelist())
    data = _tracked("cases/data", "forecasts/data", "cases/studies")
    assert any(n.endswith(".csv.gz") for n in data) and any(n.endswith(".yaml") for n in data)
    missing = sorted(set(_tracked(*PACKAGES)) - names)
    assert not missing, f"not in the wheel: {missing}; add them to [tool.setuptools.package-data]"
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    )
    assert b"workbench = workbench.cli:main" in entry


def _fresh_venv(path: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed (no dependencies); the project
    environment's packages are reachable after its own through a ``.pth`` line, so that
    nothing is downloaded again."""
    venv.create(path, with_pip=True, clear=True)
    python = path / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(own, "zz_project_dependencies.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    return path / "bin"


@pytest.mark.slow
def test_wheel_runs_a_study_in_a_fresh_venv_outside_the_checkout(wheel, tmp_path):
    bin_dir = _fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"OMP_NUM_THREADS": "1", "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    where = run(str(bin_dir / "python"), "-c", "import cases, workbench; print(workbench.__file__)")
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel's copy, not the checkout
    assert run(str(bin_dir / "workbench"), "--version").startswith("workbench 0.1.0")
    listing = run(str(bin_dir / "workbench"), "cases")
    assert re.search(r"congested .*\(.*venv.*congested\.yaml\)", listing), listing
    out = run(
        str(bin_dir / "workbench"),
        "run",
        "congested",
        "--models",
        "tso",
        "--scheduler",
        "sync",
        "--no-plots",
        "--no-progress",
    )
    assert "results:" in out
    assert (work / "results" / "congested.nc").stat().st_size > 10_000


def _names(requirements: list[str]) -> dict[str, str]:
    """Canonical name -> version specifier of each requirement."""
    out = {}
    for text in requirements:
        req = Requirement(text)
        out[canonicalize_name(req.name)] = str(req.specifier)
    return out


def _conda(specs: list) -> dict[str, str]:
    """Canonical name -> specifier of the conda (and pip) entries of environment.yml."""
    out = {}
    for entry in specs:
        if isinstance(entry, dict):  # the pip section
            out |= _names([e.split("#")[0].strip() for e in entry["pip"]])
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry)
        name = canonicalize_name(m.group(1))
        out[name] = str(Requirement(f"x{m.group(2)}").specifier)
    return out


def test_environment_yml_asks_for_the_dependencies_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    want = _names(project["dependencies"] + project["optional-dependencies"]["test"])
    want = {canonicalize_name(CONDA_NAMES.get(k, k)): v for k, v in want.items()}
    want["python"] = str(Requirement(f"x{project['requires-python']}").specifier)
    want["pip"] = ""
    assert _conda(env["dependencies"]) == want
