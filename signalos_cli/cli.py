"""signalos: the command-line face of SignalOS (the commands arrive with the CLI issue)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """SignalOS command-line client."""


def main() -> None:
    cli(prog_name="signalos")
