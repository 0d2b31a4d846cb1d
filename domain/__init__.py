"""The pure core of creditledger: money, the CreditPurchase aggregate, its rules and errors.

Nothing in this package does I/O, reads the clock or the environment.
"""
