"""Tests of masksql."""
