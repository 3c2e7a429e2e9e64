"""The command line starts light: ``--help`` and ``--version`` load no heavy library, each
command imports what it uses, and the packages' public names load on first use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

#: libraries that take seconds to import; none is needed to print help or versions
HEAVY = ("pandapower", "pyomo", "xarray", "dask", "distributed", "sklearn")


def _run_main(args: list[str]) -> dict:
    """Run ``workbench ARGS`` in a fresh interpreter: exit code, output and the top-level
    packages it imported."""
    code = (
        "import contextlib, io, json, sys\n"
        "from workbench.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main({args!r})\n"
        "print(json.dumps({'rc': rc, 'out': out.getvalue(),\n"
        "                  'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"]])
def test_help_and_version_import_no_heavy_library(args):
    got = _run_main(args)
    assert got["rc"] == 0
    assert not set(HEAVY) & set(got["modules"]), set(HEAVY) & set(got["modules"])
    if args == ["--version"]:
        # the versions are read from the installed metadata, not from the modules
        assert got["out"].startswith("workbench ")
        assert "pandapower " in got["out"] and "pyomo " in got["out"]
    else:
        assert "Usage: workbench" in got["out"]


def test_cases_command_imports_no_solver_and_no_dask():
    got = _run_main(["cases"])
    assert got["rc"] == 0 and "studies:" in got["out"]
    assert "pandapower" in got["modules"]  # the command lists pandapower's cases
    assert not {"pyomo", "xarray", "dask", "distributed", "sklearn"} & set(got["modules"])


def test_importing_the_packages_loads_no_heavy_library():
    code = (
        "import json, sys, cases, forecasts, stochastic, workbench, workbench.cli\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout))
    assert not set(HEAVY) & modules


@pytest.mark.parametrize("package", ["cases", "forecasts", "workbench"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__ and set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
