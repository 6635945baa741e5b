"""`python -m plurigrid`: the same as the `plurigrid` command."""

from plurigrid.cli.main import run_main

run_main()
