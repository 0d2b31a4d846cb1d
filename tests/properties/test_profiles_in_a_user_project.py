"""``HYPOTHESIS_PROFILE`` works in a user's project, as documented: pytest run in a directory of
its own (none of this repository's conftests), on a test module that only imports the kit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 120

USER_TEST = """
from hypothesis import settings

import creditledger.application.testing  # noqa: F401 - the import is what is under test


def test_the_profile_in_force():
    print("PROFILE", settings.get_current_profile_name(), settings.default.max_examples)
"""

USER_CONFTEST = """
from hypothesis import settings

settings.register_profile("mine", max_examples=7)
settings.load_profile("mine")
"""


def run_user_project(project: Path, **variables: str) -> str:
    """Run pytest in ``project`` with only ``variables`` of the profile-selecting environment;
    return the ``PROFILE name max_examples`` the user's test printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_user.py"],
        cwd=project,
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("PROFILE")]
    return line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    return tmp_path


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"HYPOTHESIS_PROFILE": "thorough"}, "PROFILE thorough 10000"),
        ({"CI": "true"}, "PROFILE ci 200"),
        ({}, "PROFILE dev 50"),
    ],
)
def test_importing_the_kit_loads_the_profile_the_environment_selects(
    project: Path, variables: dict[str, str], expected: str
) -> None:
    assert run_user_project(project, **variables) == expected


def test_a_profile_the_user_loaded_is_left_alone(project: Path) -> None:
    (project / "conftest.py").write_text(USER_CONFTEST)

    assert run_user_project(project, HYPOTHESIS_PROFILE="thorough") == "PROFILE mine 7"
