"""Adapters: settings, persistence, the CLI (and later HTTP). The only layer that knows I/O."""
