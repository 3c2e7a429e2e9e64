"""The documentation: the generated study reference matches the schema it is made from."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict``: no broken link, missing page or snippet (``make docs``)."""
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
    assert 'class="arithmatex"' in (tmp_path / "equations" / "index.html").read_text()
