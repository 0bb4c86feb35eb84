"""Names of the retirement registry, shared by replicas and the control plane (Ray-free).

"Delete means gone" (DESIGN addition 15): before an application is deleted, or a version of
it stops being served, the control plane asks the registry actor (``deployments.retire``) to
tell every replica of that application to refuse the name with the surface's 404, and waits
for each replica to confirm. The control plane finds the actor by these names.
"""

from __future__ import annotations

RETIRE_REGISTRY_NAME = "platform-retire-registry"
RETIRE_REGISTRY_NAMESPACE = "platform"
# The whole application; any other scope is one of its versions (TorchServe ``/<version>``).
WHOLE_APP = ""
# A watching replica calls the registry again at least this often; one silent for longer than
# twice this is taken for dead (its refusal no longer matters: it cannot answer either).
WATCH_PERIOD_S = 5.0
