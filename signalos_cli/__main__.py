"""`python -m signalos_cli` is `signalos`."""

from .cli import main

main()
