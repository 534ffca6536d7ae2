"""`python -m signalos_cli` is `signalos`."""

from signalos_cli.cli import main

main()
