"""Bodies of the read-only graph views of a workflow (API 0.21)."""

from __future__ import annotations

from pydantic import Field

from control_plane.schemas.torc.base import Page, TorcRead


class JobDependencyRead(TorcRead):
    """One dependency edge."""

    job_id: int = Field(description="The dependent job.")
    job_name: str = Field(description="Its name.")
    depends_on_job_id: int = Field(description="The job it waits for.")
    depends_on_job_name: str = Field(description="Its name.")
    workflow_id: int = Field(description="The workflow.")


class JobDependencyPage(Page[JobDependencyRead]):
    """``GET /workflows/{id}/job_dependencies``."""

    job_dependencies: list[JobDependencyRead] = Field(description="Alias of items.")


class JobFileRelationshipRead(TorcRead):
    """One (producer, consumer) pair of a file; either side may be absent."""

    file_id: int = Field(description="The file.")
    file_name: str = Field(description="Its name.")
    file_path: str = Field(description="Its path.")
    producer_job_id: int | None = Field(default=None, description="A job writing it.")
    producer_job_name: str | None = Field(default=None, description="Its name.")
    consumer_job_id: int | None = Field(default=None, description="A job reading it.")
    consumer_job_name: str | None = Field(default=None, description="Its name.")
    workflow_id: int = Field(description="The workflow.")


class JobFileRelationshipPage(Page[JobFileRelationshipRead]):
    """``GET /workflows/{id}/job_file_relationships``."""

    job_file_relationships: list[JobFileRelationshipRead] = Field(description="Alias of items.")


class JobUserDataRelationshipRead(TorcRead):
    """One (producer, consumer) pair of a user data document."""

    user_data_id: int = Field(description="The user data.")
    user_data_name: str = Field(description="Its name.")
    producer_job_id: int | None = Field(default=None, description="A job writing it.")
    producer_job_name: str | None = Field(default=None, description="Its name.")
    consumer_job_id: int | None = Field(default=None, description="A job reading it.")
    consumer_job_name: str | None = Field(default=None, description="Its name.")
    workflow_id: int = Field(description="The workflow.")


class JobUserDataRelationshipPage(Page[JobUserDataRelationshipRead]):
    """``GET /workflows/{id}/job_user_data_relationships``."""

    job_user_data_relationships: list[JobUserDataRelationshipRead] = Field(
        description="Alias of items."
    )


class MissingUserDataRead(TorcRead):
    """``GET /workflows/{id}/missing_user_data``."""

    user_data: list[int] = Field(description="Ids of needed user data that has no data.")


class RequiredExistingFilesRead(TorcRead):
    """``GET /workflows/{id}/required_existing_files``."""

    files: list[int] = Field(description="Ids of files that must exist before running.")


class ReadyJobRequirementsRead(TorcRead):
    """``GET /workflows/{id}/ready_job_requirements``: what the ready jobs need together."""

    num_jobs: int = Field(description="Ready jobs.")
    num_cpus: int = Field(description="Sum of their CPUs.")
    num_gpus: int = Field(description="Sum of their GPUs.")
    memory_gb: float = Field(description="Sum of their memory, GiB.")
    max_num_nodes: int = Field(description="The most nodes one of them needs.")
    max_runtime: str = Field(description="The longest runtime, ISO 8601.")


class RunningJobRead(TorcRead):
    """A running job and where it runs."""

    job_id: int = Field(description="The job.")
    job_name: str = Field(description="Its name.")
    compute_node_name: str = Field(description="Host of its compute node.")
    scheduler_type: str = Field(description="The compute node's type (``local``, ``ray``...).")
    scheduler_job_id: str | None = Field(default=None, description="Scheduler job id (unused).")
    start_time: str | None = Field(default=None, description="When it started running.")


class RunningJobPage(Page[RunningJobRead]):
    """``GET /workflows/{id}/running_jobs``."""

    running_jobs: list[RunningJobRead] = Field(description="Alias of items.")
