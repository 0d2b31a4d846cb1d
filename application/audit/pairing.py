"""Verifying an export in two halves, one per aggregate kind: what the halves must agree on.

Offline verification replays purchase events and credit-wallet events; each kind's replay needs
nothing of the other's state but the *pairing facts*: a purchase event that comes with a wallet
event (an ``Initiated`` and its ``GrantAdded``, a void and its ``GrantVoided``, a failure or a
refund and its ``GrantRevoked``) tells the fold what that wallet event must say, and the fold
compares. Split in two, the purchase half knows what each wallet line must say, the wallet half
what it says; each writes its side of every comparison, at the wallet line's position, into a
``PairingFacts`` digest, and the halves are consistent only if both digests are equal.

Equal digests mean equal facts, each compared as verification in order compares them: the facts
are written with ``repr``, and equal ``repr``s of these values (UUIDs, decimals, datetimes,
integers, strings, enums and lists of them) are equal values. The converse need not hold (a
grant of ``100.10`` where the purchase says ``100.1`` is equal, its ``repr`` is not): the halves
then disagree, and the export is verified again in order, which decides. A difference never
passes; an equality the digest does not see only costs time.
"""

from __future__ import annotations

import hashlib
from enum import Enum


class Half(Enum):
    """Which half of a verification in halves (``ExportVerifier``'s ``half``)."""

    PURCHASES = "purchases"
    """Every line's shape, the purchase events' replay and what each wallet line must say; the
    hash chain taken as the wallet half checks it."""
    WALLETS = "wallets"
    """Every line's shape and JSON, the hash chain, the wallet events' replay and what each
    wallet line says."""


class PairingFacts:
    """A running digest of one half's side of the pairing comparisons, in log order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0

    def add(self, position: int, *facts: object) -> None:
        self._digest.update(repr((position, *facts)).encode("utf-8", "surrogatepass") + b"\n")
        self.count += 1

    def digest(self) -> str:
        return self._digest.hexdigest()
