"""Tokens and roles, and the control socket's local peer credentials."""
