"""On the host: the admin command line, backup/restore, the listeners and the control socket,
TLS, systemd notify, the state-directory lock, logs, metrics and housekeeping."""
