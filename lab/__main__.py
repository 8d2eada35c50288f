"""Run the CLI as ``python -m lab``."""

from lab.cli import main

main()
