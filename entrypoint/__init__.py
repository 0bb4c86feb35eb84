"""Composition roots that join the two planes: the Serve application builders named by config."""
