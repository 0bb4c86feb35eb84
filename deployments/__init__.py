"""Data plane: Ray Serve deployments (model servers, workflow drivers, gateway, job runner)."""
