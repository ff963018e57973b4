"""environment.yml, the Makefile and pyproject.toml describe the same environment."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _torch_pin(reqs):
    pins = [r for r in reqs if re.match(r"torch\s*==", r)]
    assert len(pins) == 1, reqs
    return pins[0].replace(" ", "")


def test_environment_yml_matches_package_metadata():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    assert _pyproject()["requires-python"] == ">=3.11"
    assert "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[dev]" in pip
    assert "dev" in _pyproject()["optional-dependencies"]
    assert _torch_pin(pip) == _torch_pin(_pyproject()["dependencies"])


def test_makefile_installs_the_same_torch_first():
    make = (REPO / "Makefile").read_text()
    pin = _torch_pin(_pyproject()["dependencies"])
    first_torch = make.index(f"pip install --quiet {pin}")
    assert first_torch < make.index("-e '.[dev]'")


def test_ci_calls_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci and "`make test`" in readme
