"""Outgoing webhooks (docs/alerts.md): URLs checked and redacted, bodies per format, signing,
one delivery worker per webhook reading the event log after its durable cursor, and the
registry that starts and stops the workers with the app."""
