"""The Ray job runner of a workflow as a desired Serve application (survives restarts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from control_plane.integrations.serve_types import AppSpec, ServeGateway
from control_plane.services.serve_apps import ServeAppService, app_name
from control_plane.services.torc.common import get_workflow_or_raise
from control_plane.settings import Settings
from deployments.contracts.app_args import JobRunnerArgs

OWNER = "jobs"


def runner_app_name(workflow_id: int) -> str:
    """The Serve application name of a workflow's runner."""
    return app_name(OWNER, str(workflow_id))


class RunnerService:
    """Starts, inspects and stops the built-in Ray runner of a workflow."""

    def __init__(self, session: Session, gateway: ServeGateway, settings: Settings) -> None:
        self.session = session
        self.apps = ServeAppService(session, gateway)
        self.settings = settings

    def start(self, workflow_id: int, options: dict[str, Any]) -> dict[str, Any]:
        """Record and apply the runner application for a workflow.

        Args:
            workflow_id: the workflow to run.
            options: ``poll_interval_s``, ``max_parallel_jobs``, ``log_dir`` overrides.

        Returns:
            The application name and what Serve reports so far.
        """
        get_workflow_or_raise(self.session, workflow_id)
        log_dir = options.get("log_dir") or str(
            Path(self.settings.data_dir) / "torc" / "logs" / f"workflow_{workflow_id}"
        )
        args = JobRunnerArgs(
            url=self.settings.public_url.rstrip("/"),
            workflow_id=workflow_id,
            log_dir=log_dir,
            poll_interval_s=float(options.get("poll_interval_s") or 0.5),
            max_parallel_jobs=options.get("max_parallel_jobs"),
            remove_app_when_done=True,
        )
        name = runner_app_name(workflow_id)
        self.apps.put(AppSpec(name, None, args), owner=OWNER)
        return self.state(workflow_id)

    def state(self, workflow_id: int) -> dict[str, Any]:
        """Whether the runner is recorded and what Serve reports for it."""
        name = runner_app_name(workflow_id)
        record = self.apps.get(name)
        state = self.apps.state(name)
        return {
            "workflow_id": workflow_id,
            "app_name": name,
            "recorded": record is not None,
            "status": state.status if state is not None else "NOT_STARTED",
            "message": state.message if state is not None else "",
            "log_dir": record.args.get("log_dir") if record is not None else None,
        }

    def stop(self, workflow_id: int) -> dict[str, Any]:
        """Forget and delete the runner application (running jobs are left to finish)."""
        name = runner_app_name(workflow_id)
        self.apps.remove(name)
        return {
            "workflow_id": workflow_id,
            "app_name": name,
            "recorded": False,
            "status": "DELETING",
        }
