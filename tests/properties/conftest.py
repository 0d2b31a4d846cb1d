"""Hypothesis profiles for the property tests: ``HYPOTHESIS_PROFILE``, else ``ci`` under CI."""

from __future__ import annotations

from creditledger.application.testing.profiles import load_profile

load_profile()
