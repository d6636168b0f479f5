"""Privacy of MaskSQL: the guard that masks what the small model missed, and the leak audit."""
