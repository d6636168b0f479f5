"""Answers from the gold SQL (the offline oracle) and parsing of real model replies."""
