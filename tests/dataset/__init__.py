"""Tests of dataset."""
