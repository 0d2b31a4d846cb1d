"""Every error the ledger can raise has its HTTP status in one table: none falls through to 500."""

from __future__ import annotations

import importlib
import pkgutil

import creditledger.application
import creditledger.domain
from creditledger.domain.errors import LedgerError
from creditledger.infrastructure.http.errors import HTTP_TITLES, STATUS_BY_CODE


def _ledger_error_codes() -> dict[str, str]:
    """The code of every ``LedgerError`` class the domain and application define, by class."""
    for package in (creditledger.domain, creditledger.application):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    found: dict[str, str] = {}
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # A class with a code of its own is raised; one without (PurchaseStateError) is a base.
        if cls is not LedgerError and "code" in vars(cls):
            found[cls.__qualname__] = cls.code
    return found


def test_every_ledger_error_code_has_an_http_status() -> None:
    codes = _ledger_error_codes()
    assert "InvalidTransitionError" in codes  # the walk found the domain's errors
    assert "StoreUnavailableError" in codes  # and the application's
    missing = {name: code for name, code in codes.items() if code not in STATUS_BY_CODE}
    assert not missing, f"add these codes to STATUS_BY_CODE: {missing}"


def test_every_code_the_http_shell_raises_has_an_http_status() -> None:
    assert set(HTTP_TITLES) <= set(STATUS_BY_CODE)
