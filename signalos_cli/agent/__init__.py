"""The desktop agent: executes the daemon's commands on a broker and reports back."""
