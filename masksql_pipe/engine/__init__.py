"""The engine: stage base, numbered files, journal, records, fingerprints, lock, DAG, runner."""
