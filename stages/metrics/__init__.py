"""Execution accuracy as the original MaskSQL computes it, breakdowns, hardness, the sweep."""
