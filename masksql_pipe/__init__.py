"""masksql-pipe: language-model experiments as numbered JSON file stages."""
