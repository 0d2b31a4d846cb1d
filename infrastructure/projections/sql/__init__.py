"""The read model tables in SQL, for SQLite and PostgreSQL alike; a dialect says what differs.

One concept a module: ``dialect`` (how a store spells types and values, and turns rows into
parameters and back), ``schema`` (creating and dropping tables), ``writes`` (a view
transaction's reads and writes), ``queries`` (the read queries, ``ReadModelQueries`` in SQL),
``store`` (the SQL view store the SQLite and PostgreSQL stores extend).
"""
