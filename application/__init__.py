"""Use cases: ``CreditLedger`` (one method per command, and the queries), the commands, the
purchase as callers see it, group commit, the read models' projections and queries, the audit, and
the property-test kit. Imports the domain, never the infrastructure.
"""
