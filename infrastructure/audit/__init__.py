"""The auditor's adapters: the log read in bulk, export files, checkpoints, the live state."""
