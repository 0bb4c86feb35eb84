"""One view of the platform: Ray nodes, Serve applications and the reconciler's last pass."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import DomainError
from control_plane.integrations.serve_types import ServeGateway
from control_plane.services.reconciler import Reconciler
from control_plane.services.serve_apps import ServeAppService


def platform_status(
    session: Session, gateway: ServeGateway, reconciler: Reconciler | None
) -> dict[str, Any]:
    """Nodes with resources, applications and the reconciler's last report.

    Each desired/running application comes with its deployment states and replica counts.
    Ray being down is reported, not raised.
    """
    ray_error = None
    try:
        nodes = gateway.cluster_nodes()
        running = gateway.status()
    except DomainError as exc:
        nodes, running, ray_error = [], {}, exc.message
    desired = {r.name: r for r in ServeAppService(session, gateway).list()}
    applications = []
    for name in sorted(set(desired) | set(running)):
        state = running.get(name)
        record = desired.get(name)
        applications.append(
            {
                "name": name,
                "owner": record.owner if record else None,
                "route_prefix": record.route_prefix if record else None,
                "desired": record is not None,
                "status": state.status if state else "MISSING",
                "message": state.message if state else (record.last_error or "" if record else ""),
                "deployments": {
                    dname: {"status": d.status, "message": d.message, "replicas": d.replica_states}
                    for dname, d in (state.deployments.items() if state else ())
                },
            }
        )
    report = reconciler.last_report if reconciler else None
    return {
        "ray": {"reachable": ray_error is None, "error": ray_error, "nodes": nodes},
        "applications": applications,
        "reconciler": None
        if report is None
        else {
            **asdict(report),
            "started_at": report.started_at.isoformat(),
        },
    }
