"""The SQL toolkit under MaskSQL: tokenizer, schema, symbol tables, masking and unmasking,
read-only execution and execution match. It knows nothing of stages, files or models."""
