"""MLServe admin use-cases: tritons, the versioned model store, loads, users and client apps."""
