"""Defaults for OpenAI-compatible endpoints, apart from the client so reading them is cheap.

The registry needs them to describe a model without importing the `openai` package.
"""

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 5
