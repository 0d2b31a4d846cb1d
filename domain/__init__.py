"""The pure core of creditledger: money, intent, the transition table, the events (one closed
union), the CreditPurchase aggregate, ledger postings and typed errors.

Nothing in this package does I/O, reads the clock or the environment, or imports another layer.
"""
