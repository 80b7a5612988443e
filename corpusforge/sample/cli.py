"""Subcommands of this package (filled in by its issue)."""


def add_cli(sub) -> None:
    return None
