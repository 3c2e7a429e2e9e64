"""The documentation: the generated study reference matches the schema it is made from; the
site builds strictly, renders its equations without a script and has the API reference."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from cases import StudyConfigError, parse_study
from cases.study import StudyConfig

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "gen_reference.py"
PAGE = ROOT / "docs" / "reference" / "study.md"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tables(text: str) -> dict[str, dict[str, list[str]]]:
    """Section path -> key -> its row's cells, read back from the page."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in text.splitlines():
        head = re.match(r"## (?:`([^`]+)`|Top level)", line)
        if head:
            section = head.group(1) or ""
            out[section] = {}
        row = re.match(r"\| `([a-z_0-9]+)` \| (.*) \|$", line)
        if row and section is not None:
            out[section][row.group(1)] = [c.strip() for c in row.group(2).split(" | ")]
    return out


def _schema_keys(model: type[BaseModel], path: str = "") -> dict[str, set[str]]:
    """Every section of the schema and its keys, walked independently of the script."""
    out = {path: set(model.model_fields)}
    for name, field in model.model_fields.items():
        ann = field.annotation
        suffix = ""
        if getattr(ann, "__origin__", None) is tuple:
            ann, suffix = ann.__args__[0], "[]"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _schema_keys(ann, f"{path}.{name}{suffix}".lstrip("."))
    return out


def test_committed_reference_is_up_to_date():
    assert PAGE.read_text(encoding="utf-8") == _generator().render(), (
        "docs/reference/study.md is out of date; run: python docs/gen_reference.py"
    )


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch):
    gen = _generator()
    stale = tmp_path / "study.md"
    stale.write_text(gen.render().replace("`beta`", "`gamma`"))
    monkeypatch.setattr(gen, "PAGE", stale)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr


def test_every_key_of_the_schema_has_a_row():
    tables = _tables(PAGE.read_text(encoding="utf-8"))
    schema = _schema_keys(StudyConfig)
    assert set(tables) == set(schema)
    for section, keys in schema.items():
        assert set(tables[section]) == keys, section


def test_stated_defaults_and_ranges_are_what_validation_does():
    tables = _tables(PAGE.read_text(encoding="utf-8"))
    default = StudyConfig()
    assert tables["risk"]["alpha"] == ["float", f"`{default.risk.alpha}`", "(0, 1)"]
    assert tables["risk"]["beta"] == ["float", f"`{default.risk.beta}`", "[0, 1]"]
    assert tables[""]["n_days"][2] == "[1, 366]"
    assert "one of `60`, `30`, `15`, `5`" in tables["resolution"]["second_stage_minutes"][2]
    assert tables["feeders[]"]["bus"][1] == "*required*"
    # the bounds the page states are the ones validation enforces: a closed end is
    # accepted, an open end and a value beyond are refused
    for key, ok, bad in (
        ("beta", [0.0, 1.0], [-0.01, 1.01]),
        ("alpha", [0.01, 0.99], [0.0, 1.0]),
    ):
        for value in ok:
            parse_study({"risk": {key: value}})
        for value in bad:
            with pytest.raises(StudyConfigError, match=f"risk.{key}"):
                parse_study({"risk": {key: value}})


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: what the hooks read of a mkdocs page
_Page = SimpleNamespace(file=SimpleNamespace(src_uri="test.md"))


def test_math_hook_renders_mathml_and_refuses_what_it_cannot_render():
    pytest.importorskip("latex2mathml", reason="the docs extra is not installed")
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    from mkdocs.exceptions import PluginError

    math = _hook("math")
    page = (
        '<p>cost <span class="arithmatex">\\(\\mathrm{CVaR}_\\alpha &lt; x\\)</span></p>'
        '<div class="arithmatex">\\[\\sum_s \\pi_s = 1\\]</div>'
    )
    out = math.on_page_content(page, _Page, None, None)
    assert out.count("<math ") == 2 and "\\(" not in out and "\\[" not in out
    assert 'display="inline"' in out and 'display="block"' in out
    assert "&#x0003C;" in out or "&lt;" in out  # the escaped '<' is a MathML operator
    bad = '<span class="arithmatex">\\(\\begin{aligned} a &amp;= b \\end{aligned}\\)</span>'
    with pytest.raises(PluginError, match=r"test\.md: cannot render"):
        math.on_page_content(bad, _Page, None, None)


def test_notebook_hook_shows_the_walkthrough_cells():
    pytest.importorskip("jupytext", reason="the docs extra is not installed")
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    notebooks = _hook("notebooks")
    text = notebooks.on_page_markdown(
        "intro\n<!-- notebook: examples/walkthrough.py -->\n", _Page, None, None
    )
    assert text.startswith("intro\n# Walkthrough")
    assert "## 5. A figure" in text and "```python\nfigure = plot_dispatch(" in text
    assert "# %%" not in text


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` (``make docs``): no broken link, missing page or snippet,
    no docstring the API reference cannot parse; equations rendered, no script from the
    network; the API reference and the walkthrough notebook are pages."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install .[docs])")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "examples" / "run-a-study" / "index.html").read_text()
    assert "congested_small.nc" in page  # the example script is included
    # nothing is loaded from the network: no script, stylesheet or font from a URL
    for html in tmp_path.rglob("*.html"):
        text = html.read_text()
        remote = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//[^\"]*\"", text)
        assert not remote, (html, remote)
        assert "fonts.googleapis" not in text and "mathjax" not in text.lower(), html
    equations = (tmp_path / "equations" / "index.html").read_text()
    assert equations.count("<math ") > 100  # every formula, rendered when the site is built
    assert "\\(" not in equations and "\\[" not in equations  # no LaTeX left to typeset
    api = {
        p: (tmp_path / "reference" / "api" / p / "index.html").read_text()
        for p in ("workbench", "cases", "forecasts", "stochastic")
    }
    for package, names in {
        "workbench": [
            "workbench.api.run",
            "workbench.runner.run_study",
            "workbench.results.read_results",
            "workbench.results.write_results",
            "workbench.plots.write_plots",
        ],
        "cases": ["cases.study.StudyConfig", "cases.study.load_study", "cases.system.build_system"],
        "forecasts": [
            "forecasts.generate.forecast_scenarios",
            "forecasts.models.QuantileForecaster",
        ],
        "stochastic": ["stochastic.twostage.build_two_stage", "stochastic.risk"],
    }.items():
        for name in names:
            assert f'id="{name}"' in api[package], name
    assert "Parameters:" in api["workbench"]  # numpydoc sections rendered
    walkthrough = (tmp_path / "examples" / "walkthrough" / "index.html").read_text()
    assert "Walkthrough: one study" in walkthrough and "plot_dispatch" in walkthrough
