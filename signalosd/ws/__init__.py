"""WebSocket sessions: the shared base, the /ws event stream and the /ws/agent session."""
