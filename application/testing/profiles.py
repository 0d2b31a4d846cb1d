"""Hypothesis profiles for the ledger's property tests: ``dev``, ``ci`` and ``thorough``.

``HYPOTHESIS_PROFILE`` picks one; without it, ``ci`` when the ``CI`` variable is set and ``dev``
otherwise. Importing ``creditledger.application.testing`` registers them and loads that one
(``apply_selected_profile``), unless a profile of the user's is already loaded.

A profile sets the default for every ``@given`` test, and ``settings_for`` scales the state
machine to the store it runs on: a history on PostgreSQL costs a hundred times one in memory, so
it gets fewer examples, never a deadline (store latency is not a property).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import InvalidArgument

PROFILE_VARIABLE = "HYPOTHESIS_PROFILE"
DEV, CI, THOROUGH = "dev", "ci", "thorough"

Target = Literal["domain", "memory", "sqlite", "postgres"]


@dataclass(frozen=True)
class Budget:
    examples: int
    steps: int = 30
    """Rules per state machine example (Hypothesis' ``stateful_step_count``)."""


BUDGETS: Mapping[str, Mapping[Target, Budget]] = {
    DEV: {
        "domain": Budget(200),
        "memory": Budget(50),
        "sqlite": Budget(10),
        "postgres": Budget(8),
    },
    CI: {
        "domain": Budget(500),
        "memory": Budget(500),
        "sqlite": Budget(50),
        "postgres": Budget(30),
    },
    THOROUGH: {
        "domain": Budget(20_000),
        "memory": Budget(10_000, steps=50),
        "sqlite": Budget(1_000, steps=50),
        "postgres": Budget(500, steps=50),
    },
}
"""Per profile: the domain-only differential test, then the state machine on each store."""

_DEFAULT_EXAMPLES = {DEV: 50, CI: 200, THOROUGH: 10_000}


def register_profiles() -> None:
    """Register the three profiles with Hypothesis (idempotent)."""
    for name, examples in _DEFAULT_EXAMPLES.items():
        settings.register_profile(
            name,
            max_examples=examples,
            # No deadlines anywhere: on a shared two-core machine a slow example is load, not
            # a bug, and speed is measured by the bench scripts instead.
            deadline=None,
            print_blob=name != DEV,
            # The explain phase can print a failing example with its arguments elided
            # ("request=,"); a falsifying example must be readable as it is printed.
            phases=[phase for phase in Phase if phase is not Phase.explain],
            suppress_health_check=[HealthCheck.too_slow],
        )


def selected_profile(environ: Mapping[str, str] | None = None) -> str:
    """The profile the environment asks for."""
    env = os.environ if environ is None else environ
    chosen = env.get(PROFILE_VARIABLE)
    if chosen:
        return chosen
    return CI if env.get("CI") else DEV


def load_profile(environ: Mapping[str, str] | None = None) -> str:
    """Register the profiles, load the selected one, and return its name."""
    register_profiles()
    name = selected_profile(environ)
    settings.load_profile(name)
    return name


def apply_selected_profile(environ: Mapping[str, str] | None = None) -> str:
    """Register the profiles and load the selected one, unless the user already chose one.

    Run when the kit is imported, so that ``HYPOTHESIS_PROFILE`` works in any project, not only
    under a conftest that calls ``load_profile``. A profile already loaded (a conftest's,
    ``--hypothesis-profile``) is the user's choice and stays; only Hypothesis' own ``default``,
    and the ``ci`` it loads by itself on CI, give way. A selected name nobody registered (yet) is
    left for the user's own code to load. Returns the profile in force.
    """
    current = settings.get_current_profile_name()
    register_profiles()
    if current not in ("default", CI):
        return current
    name = selected_profile(environ)
    try:
        settings.get_profile(name)
    except InvalidArgument:
        return current
    settings.load_profile(name)
    return name


def budget_for(target: Target, profile: str | None = None) -> Budget:
    """What ``target`` runs under ``profile`` (the loaded one by default)."""
    name = profile or settings.get_current_profile_name()
    table = BUDGETS.get(name)
    if table is None:
        # A profile of the user's own: trust its max_examples for every target.
        return Budget(settings.get_profile(name).max_examples)
    return table[target]


def settings_for(target: Target) -> settings:
    """The loaded profile's settings, with the budget for ``target`` and no deadline."""
    budget = budget_for(target)
    return settings(max_examples=budget.examples, stateful_step_count=budget.steps, deadline=None)
