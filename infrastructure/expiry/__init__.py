"""The expiry sweep, run in the server's process or on its own (``creditledger expiry run``)."""
