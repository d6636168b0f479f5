"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports."""
