"""What users install: the wheel, in a fresh virtual environment, next to a project of their own.

The editable install used in development maps the folders into ``creditledger`` with an import
hook, which hides what a wheel would get wrong (a stray top-level package, a folder missing from
``packages``). These tests build the wheel and install it as a user would, with its dependencies
from the package index and the ``testing`` extra, into one virtual environment per test session.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "application", "infrastructure")
README_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)

# A user's project with packages named like ours: the common case that broke the first wheel.
USER_PACKAGES = {
    "application/__init__.py": '"""The user\'s own application package."""\nOWNER = "user"\n',
    "application/billing.py": "def invoice() -> str:\n    return 'user invoice'\n",
    "domain/__init__.py": '"""The user\'s own domain package."""\nOWNER = "user"\n',
}
# Prepended to each README block: the user's packages are imported first, as their code would.
USER_IMPORTS = "import application, application.billing, domain\n"
# Appended: the user's packages are still theirs, and the block's test functions run.
USER_CHECKS = """
assert application.OWNER == domain.OWNER == "user", "the ledger replaced the user's packages"
assert application.billing.invoice() == "user invoice"
for _name, _value in list(globals().items()):
    if _name.startswith("test_") and callable(_value):
        _value()
"""


@dataclass(frozen=True)
class Installed:
    python: Path
    site_packages: Path
    project: Path

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``program`` (a script of the venv's ``bin``) in the user's project folder."""
        return subprocess.run(
            [str(self.python.parent / program), *args],
            cwd=self.project,
            env=_clean_environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )


def _clean_environment() -> dict[str, str]:
    """Our environment without what points at the development checkout or its venv."""
    hidden = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    # A profile the kit reads where it honours one; the README example sets none of its own.
    env["HYPOTHESIS_PROFILE"] = "dev"
    return env


def _checked(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel installed (with the ``testing`` extra) in a fresh venv, and a user project."""
    work = tmp_path_factory.mktemp("wheel-install")
    # Built from a copy of what the wheel is made of: setuptools never empties the checkout's
    # build/lib, so a module renamed since the last build would still ship from there.
    source = work / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    for layer in LAYERS:
        shutil.copytree(ROOT / layer, source / layer, ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    _checked(
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)],
            capture_output=True,
            text=True,
            check=False,
        ),
        "pip wheel",
    )
    (wheel,) = dist.glob("creditledger-*.whl")
    venv = work / "venv"
    _checked(
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        ),
        "python -m venv",
    )
    python = venv / "bin" / "python"
    # The pip cache is kept: a second session installs the same dependencies from it. Bytecode
    # is not compiled at install: on this 2-core machine that alone took minutes under load.
    _checked(
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-compile", f"{wheel}[testing]"],
            env=_clean_environment(),
            capture_output=True,
            text=True,
            check=False,
        ),
        "pip install of the wheel",
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    project = work / "user-project"
    for relative, text in USER_PACKAGES.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    return Installed(python=python, site_packages=Path(site), project=project)


def _readme_blocks() -> list[str]:
    return README_BLOCK.findall((ROOT / "README.md").read_text())


def _block_named(needle: str) -> str:
    (block,) = [block for block in _readme_blocks() if needle in block]
    return block


@pytest.mark.slow
@pytest.mark.parametrize(
    "needle",
    [
        pytest.param("PaymentAlreadyAuthorizedError", id="python-tour"),
        pytest.param("read.list_purchases(", id="read-models"),
        pytest.param("class MyLedgerMachine", id="property-kit"),
    ],
)
def test_the_readme_examples_run_in_a_user_project_with_its_own_layer_packages(
    installed: Installed, needle: str
) -> None:
    script = installed.project / "readme_example.py"
    script.write_text(USER_IMPORTS + _block_named(needle) + USER_CHECKS)
    _checked(installed.run("python", str(script)), f"the README example with {needle!r}")


@pytest.mark.slow
def test_the_command_line_entry_point_runs_from_the_wheel(installed: Installed) -> None:
    result = installed.run("creditledger", "--help")
    assert "purchase" in _checked(result, "creditledger --help")


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(installed: Installed) -> None:
    (dist_info,) = installed.site_packages.glob("creditledger-*.dist-info")
    with (dist_info / "RECORD").open(newline="") as record:
        paths = [Path(row[0]) for row in csv.reader(record) if row]
    in_site_packages = [path for path in paths if path.parts[0] != ".."]  # scripts live elsewhere
    top_level = {path.parts[0] for path in in_site_packages} - {dist_info.name}
    assert top_level == {"creditledger"}


def test_the_packages_list_covers_every_folder_of_the_three_layers() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {f"creditledger.{layer}": layer for layer in LAYERS}
    folders = {
        "creditledger." + ".".join(init.parent.relative_to(ROOT).parts)
        for layer in LAYERS
        for init in (ROOT / layer).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == folders
