"""`python main.py view --data DIR`: a local web page to inspect a run by hand, read-only."""

from masksql_pipe.viewer.run_folder import RunFolder

__all__ = ["RunFolder"]
