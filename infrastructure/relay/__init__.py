"""The event log relayed to NATS JetStream, and the kit that consumes it without skipping."""
