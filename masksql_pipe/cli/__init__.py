"""The command line: one typer app, its options, console output, progress, row diffs."""
