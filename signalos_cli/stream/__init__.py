"""Reading the event stream from the shell: `signalos tail`, the `signalos ws` tester and
what they share."""
