"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers by rules, to test pipelines."""
