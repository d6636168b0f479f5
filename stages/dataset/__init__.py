"""Dataset layouts as distributed (Spider, BIRD), evidence, ranking files."""
