"""Use cases: the CreditLedger service, its commands, queries and views."""
