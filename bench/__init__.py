"""make bench (bench.py) and make soak (soak.py): the local stack under load."""
