"""Prompt processing: the PromptProcessor stage, the prompt log, spend accounting."""
