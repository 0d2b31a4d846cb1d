"""Joining the two halves of a verification in halves (``creditledger.application.audit.pairing``).

Each half is an ``ExportVerifier`` fed every line of the same export; the wallet half's outcome
travels (in ``verify_file``, from another process) as a ``WalletHalfResult``. ``joined`` gives the
report of verification in order, or None when the halves cannot stand for it: one failed or is in
doubt, their pairing facts differ, or the joined balances break the FBO equation. None says
nothing about the export: verify it another way, which reports what is wrong, if anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditledger.application.audit.findings import VerificationFailedError
from creditledger.application.audit.fold import WalletHalfFold
from creditledger.application.audit.verify import ExportVerifier, VerificationReport


@dataclass(frozen=True)
class WalletHalfResult:
    """What the wallet half adds up to (picklable)."""

    passed: bool
    """Its report is ok and it is not in doubt."""
    pairing_digest: str
    fold: WalletHalfFold | None
    """Its wallets and balances, if it passed."""


def wallet_half_result(wallet_half: ExportVerifier) -> WalletHalfResult:
    """Finish the wallet half (fed every line, or stopped at its first failure or doubt)."""
    report = wallet_half.finish()
    if not report.ok or wallet_half.in_doubt is not None:
        return WalletHalfResult(passed=False, pairing_digest="", fold=None)
    return WalletHalfResult(
        passed=True, pairing_digest=wallet_half.pairing_digest, fold=report.ledger.wallet_half()
    )


def joined(
    purchase_half: ExportVerifier, wallet_half: WalletHalfResult
) -> VerificationReport | None:
    """Finish the purchase half and join it with the wallet half: the report verification in
    order gives, or None (see the module)."""
    report = purchase_half.finish()
    if not report.ok or purchase_half.in_doubt is not None or wallet_half.fold is None:
        return None
    if not wallet_half.passed or wallet_half.pairing_digest != purchase_half.pairing_digest:
        return None
    try:
        report.ledger.join_wallet_half(wallet_half.fold)
    except VerificationFailedError:
        return None
    return report
