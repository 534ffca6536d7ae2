"""In-process fan-out: the event bus, the per-client queues and the agent hub."""
