"""Ray-free contracts shared by the control plane and the data plane.

Parsed model configs, workflow specs and DAG validation, archive reading, placement, stats shapes,
data-plane errors, datatypes, typed application arguments and the rules both planes must agree on
(API-key digests, HTTP Basic parsing, the one name rule). Nothing here imports ray, starlette,
fastapi or ``control_plane``; import-linter enforces it (``pyproject.toml``).
"""
