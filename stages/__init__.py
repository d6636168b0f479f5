"""The MaskSQL application: privacy-preserving text-to-SQL stages built on masksql_pipe."""
