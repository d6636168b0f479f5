"""Sample experiment pipelines (``simple``: a calculator, ``dag``: the A..F graph) and their data.

The cases and templates ship as package data next to these modules, so the samples run from an
installed package with no key and no network (offline models ``perfect``, ``flakey``, ``echo``).
"""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
"""Folder holding the sample modules, their cases (*_cases.json) and templates (*.j2)."""


def sample_file(name: str) -> Path:
    """Path of a file shipped with the samples (a case file or a template)."""
    return SAMPLES_DIR / name
