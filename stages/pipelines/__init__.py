"""MaskSQL and its baselines as pipelines, and their settings."""
