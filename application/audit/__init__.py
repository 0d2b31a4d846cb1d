"""The auditor's toolkit: the export format, its hash chain, and the offline verifier.

An export is the event log written as JSON Lines: a header, one line per event in commit order,
and a trailer. Each event line's SHA-256 covers the previous line's hash and the canonical bytes of
the event, so changing, removing, adding or reordering any event breaks the chain from there on.
Verification replays every event through the same domain code as the live path
(``creditledger.domain.purchase.project_purchase`` and ``creditledger.domain.ledger.postings_for``)
and needs nothing but the file. Nothing in this package does I/O: the infrastructure reads the store
and the files.
"""
