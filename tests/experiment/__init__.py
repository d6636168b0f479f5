"""Tests of experiment."""
