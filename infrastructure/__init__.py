"""Adapters, the only layer that does I/O: settings, the composition root (``bootstrap``), event
persistence, read-model storage, the audit's files, the CLI and the HTTP API.
"""
