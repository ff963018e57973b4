"""environment.yml, the Makefile, pyproject.toml and requirements.lock describe the same environment,
and the installed one is the lock's."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _lock() -> dict[str, str]:
    """requirements.lock as canonical name -> version; every line that is not a comment is ``name==version``."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!]+)", line)
            assert m, f"not an exact pin: {line!r}"
            pins[canonicalize_name(m[1])] = m[2]
    return pins


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
    assert pip.index("-r requirements.lock") < pip.index("-e .[dev]")
    assert "dev" in _pyproject()["optional-dependencies"]
    assert _torch_pin(pip) == _torch_pin(_pyproject()["dependencies"])


def test_makefile_installs_the_same_torch_first():
    make = (REPO / "Makefile").read_text()
    pin = _torch_pin(_pyproject()["dependencies"])
    first_torch = make.index(f"pip install --quiet {pin}")
    assert first_torch < make.index("-e '.[dev]'")


def test_makefile_installs_the_lock_after_torch_and_before_the_project():
    make = (REPO / "Makefile").read_text()
    assert "LOCK   := requirements.lock" in make
    torch = make.index(f"pip install --quiet {_torch_pin(_pyproject()['dependencies'])}")
    lock = make.index("pip install --quiet -r $(LOCK)")
    assert torch < lock < make.index("-e '.[dev]' -c $(LOCK)")


def test_lock_pins_every_dependency_of_pyproject():
    project = _pyproject()
    reqs = [Requirement(r) for r in project["dependencies"] + sum(project["optional-dependencies"].values(), [])]
    lock = _lock()
    missing = sorted(r.name for r in reqs if canonicalize_name(r.name) not in lock)
    assert not missing, f"requirements.lock lacks {missing}"
    outside = sorted(f"{r.name}=={lock[canonicalize_name(r.name)]} ({r.specifier})" for r in reqs
                     if not r.specifier.contains(lock[canonicalize_name(r.name)], prereleases=True))
    assert not outside, f"locked outside pyproject's ranges: {outside}"


def test_lock_holds_no_cuda_asset_or_own_packages():
    from relalign.assets import packages_for

    assets = {canonicalize_name(req.split("==")[0]) for req in packages_for([])}
    lock = set(_lock())
    assert not lock & (assets | {"relalign", "pip"})
    assert not [n for n in lock if n.startswith(("nvidia-", "cuda-", "triton"))]


def test_installed_versions_are_the_locked_ones():
    drift = {}
    for name, version in _lock().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        # ==2.13.0 admits a local build label (torch 2.13.0+cpu), as pip does
        if installed is None or not SpecifierSet(f"=={version}").contains(installed, prereleases=True):
            drift[name] = (version, installed)
    assert not drift, f"installed versions differ from requirements.lock (locked, installed): {drift}"


def test_ci_calls_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci and "`make test`" in readme
