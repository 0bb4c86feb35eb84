"""Typed arguments of every Serve application the control plane builds.

The control plane constructs one of these models for each application, records its JSON in the
database (``ServeAppRecord.args``) and hands it to Ray Serve; the builder named by
``builder`` validates the same JSON with the same model (Ray Serve's typed application-builder
idiom). Every default is chosen here or by the control plane, never re-derived by a builder.

With an object-store artifact store the control plane stages the artifacts an application names
(``model_dir``, ``archive``, ``war_dir``) and adds ``<key>_uri`` / ``<key>_token`` beside each,
plus ``store_options`` (:class:`StagedArtifacts`); replicas then materialize them node-locally.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, model_validator

from deployments.contracts.ts_metrics import HandlerMetricsConfig

DEFAULT_MAX_EXTRACT_BYTES = 8 * 1024**3
# The deployment inside every Triton-layout model application (``deployments.model_server``).
TRITON_MODEL_DEPLOYMENT = "TritonModel"


class ArgsModel(BaseModel):
    """Base of every argument model: unknown keys are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class StagedArtifacts(ArgsModel):
    """Where the object-store artifact store published this model's files (absent otherwise)."""

    model_dir_uri: str | None = Field(None, description="Object-store URL of ``model_dir``.")
    model_dir_token: str | None = Field(None, description="Content token of ``model_dir``.")
    archive_uri: str | None = Field(None, description="Object-store URL of ``archive``.")
    archive_token: str | None = Field(None, description="Content token of ``archive``.")
    war_dir_uri: str | None = Field(None, description="Object-store URL of ``war_dir``.")
    war_dir_token: str | None = Field(None, description="Content token of ``war_dir``.")
    store_options: dict[str, Any] | None = Field(
        None, description="fsspec options of the object store (credentials come from the env)."
    )


class AppArgs(ArgsModel):
    """Arguments of one application builder; ``builder`` names the builder they belong to."""

    builder: ClassVar[str]

    @classmethod
    def parse(cls, args: Self | dict[str, Any]) -> Self:
        """The validated arguments, from a dict (what Serve passes) or an instance."""
        if isinstance(args, cls):
            return args
        return cls.model_validate(args)

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict recorded in the database and sent to Serve (unset extras dropped)."""
        return self.model_dump(mode="json", exclude_none=True)


class TritonModelAppArgs(StagedArtifacts, AppArgs):
    """``deployments.model_server:build_triton_model``: one Triton-layout model, every version."""

    builder: ClassVar[str] = "deployments.model_server:build_triton_model"

    spec: str = Field(description="The parsed model (``ModelSpec.to_json()``).")
    model_dir: str = Field(description="The model's directory in the artifact store.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Serve deployment options (``contracts.placement.deployment_options``).",
    )


class EnsembleStepArgs(ArgsModel):
    """One step model of an ensemble: the application it is called in, or what to load fused."""

    app: str = Field(description="The step model's own application (``p-v2-<model>``).")
    spec: str = Field(description="The step model's parsed spec (``ModelSpec.to_json()``).")
    model_dir: str = Field(description="The step model's directory (loaded there when fused).")


class EnsembleAppArgs(TritonModelAppArgs):
    """``deployments.model_server:build_triton_ensemble``: a Triton ensemble over step models.

    The step models stay their own applications (independently loaded, scaled and counted);
    the ensemble's replica calls them by DeploymentHandle, or, with ``fused``, runs them
    in-process (one replica, no hop; their executions still count in their own statistics).
    """

    builder: ClassVar[str] = "deployments.model_server:build_triton_ensemble"

    steps: dict[str, EnsembleStepArgs] = Field(description="Step model name -> how to reach it.")
    fused: bool = Field(False, description="Run the step models inside the ensemble's replica.")
    step_batches_in_flight: int = Field(
        2,
        ge=1,
        le=64,
        description=(
            "Coalesced calls outstanding per step model (``ray_step_batches_in_flight``): step "
            "calls that arrive while this many are in flight share the next hop."
        ),
    )
    loaded_steps: list[str] = Field(
        default_factory=list,
        description="Step models this ensemble's load brought up (``unload_dependents``).",
    )


class TorchServeKeyStoreArgs(ArgsModel):
    """Where a TorchServe replica reads the current inference key digest (token authorization).

    The database decides: an ``inference`` row in ``ts_token_keys`` means token authorization is
    on (the control plane deletes the rows when it starts with it off), so turning it on or off
    needs no redeploy.
    """

    database_url: str = Field(description="The platform database (``ts_token_keys`` is read).")
    ttl_s: float = Field(1.0, gt=0, description="How long the key digest is cached.")


class TorchServeVersionArgs(StagedArtifacts):
    """One loaded version of a TorchServe model (or a workflow's model node)."""

    archive: str = Field(description="The ``.mar`` file (or the directory it came from).")
    model_dir: str = Field(description="Where the archive is extracted.")
    handler: str = Field(description="The manifest's handler (module or ``module:function``).")
    batch_size: PositiveInt = Field(description="TorchServe ``batchSize``.")
    max_batch_delay: NonNegativeInt = Field(description="TorchServe ``maxBatchDelay`` (ms).")
    response_timeout: float = Field(gt=0, description="TorchServe ``responseTimeout`` (s).")
    url: str | None = Field(None, description="The url the archive was registered from.")
    downloaded: bool = Field(False, description="The archive was downloaded (delete it with it).")


class TorchServeModelAppArgs(AppArgs):
    """``deployments.ts_model:build_ts_model``: every version of one TorchServe model."""

    builder: ClassVar[str] = "deployments.ts_model:build_ts_model"

    name: str = Field(description="The registered model name.")
    default_version: str = Field(description="The version ``/predictions/<name>`` serves.")
    versions: dict[str, TorchServeVersionArgs] = Field(description="Version -> what to load.")
    min_workers: NonNegativeInt = Field(description="TorchServe ``minWorkers`` (replicas).")
    max_workers: PositiveInt = Field(description="TorchServe ``maxWorkers`` (replicas).")
    max_ongoing_requests: PositiveInt = Field(description="Serve ``max_ongoing_requests``.")
    max_extract_bytes: PositiveInt = Field(
        DEFAULT_MAX_EXTRACT_BYTES, description="Archive extraction limit (bytes)."
    )
    key_store: TorchServeKeyStoreArgs | None = Field(
        None, description="Token authorization keys (None: requests are not checked)."
    )
    num_gpus: float = Field(
        0.0, ge=0, description="Serve ``ray_actor_options.num_gpus`` per replica (deviceType gpu)."
    )
    max_queued_requests: PositiveInt | None = Field(
        None,
        description="model-config.yaml ``jobQueueSize``: Serve ``max_queued_requests`` (requests "
        "beyond it get 503); None keeps Serve's default (unbounded).",
    )
    handler_metrics: HandlerMetricsConfig | None = Field(
        None, description="Which ``context.metrics`` are exported (None: TorchServe's defaults)."
    )

    @model_validator(mode="after")
    def _default_is_loaded(self) -> Self:
        if self.default_version not in self.versions:
            raise ValueError(
                f"Got default_version {self.default_version!r}; it must be one of the versions"
            )
        return self


class WorkflowNodeConfig(ArgsModel):
    """A workflow node's settings from the workflow spec (TorchServe's defaults)."""

    min_workers: NonNegativeInt = Field(1, description="``min-workers``.")
    max_workers: PositiveInt = Field(1, description="``max-workers``.")
    batch_size: PositiveInt = Field(1, description="``batch-size``.")
    max_batch_delay: NonNegativeInt = Field(50, description="``max-batch-delay`` (ms).")
    retry_attempts: NonNegativeInt = Field(1, description="``retry-attempts``.")
    timeout_ms: PositiveInt = Field(10000, description="``timeout-ms``.")

    @property
    def timeout_s(self) -> float:
        """``timeout_ms`` in seconds."""
        return self.timeout_ms / 1000.0


class WorkflowNodeModelArgs(TorchServeVersionArgs):
    """A model node that runs as its own deployment, with its own worker bounds."""

    min_workers: NonNegativeInt = Field(description="Replicas at least.")
    max_workers: PositiveInt = Field(description="Replicas at most.")
    num_gpus: float = Field(
        0.0, ge=0, description="Serve ``num_gpus`` per replica (the node's deviceType gpu)."
    )


class WorkflowAppArgs(StagedArtifacts, AppArgs):
    """``deployments.workflow:build_workflow``: a workflow's DAG driver and its model nodes."""

    builder: ClassVar[str] = "deployments.workflow:build_workflow"

    name: str = Field(description="The registered workflow name.")
    archive: str = Field(description="The ``.war`` file.")
    war_dir: str = Field(description="Where the ``.war`` is extracted.")
    handler: str = Field(description="The workflow handler file (function nodes).")
    dag: dict[str, list[str]] = Field(description="Node -> its children.")
    node_configs: dict[str, WorkflowNodeConfig] = Field(description="Node -> its settings.")
    function_nodes: list[str] = Field(description="Nodes run from the handler file.")
    inline: dict[str, TorchServeVersionArgs] = Field(
        default_factory=dict, description="Model nodes fused into the driver replica."
    )
    deployments: dict[str, WorkflowNodeModelArgs] = Field(
        default_factory=dict, description="Model nodes with their own deployment."
    )
    shared: dict[str, str] = Field(
        default_factory=dict, description="Node -> the registered model application it calls."
    )
    driver_min_workers: NonNegativeInt = Field(1, description="Driver replicas at least.")
    driver_max_workers: PositiveInt = Field(1, description="Driver replicas at most.")
    max_ongoing_requests: PositiveInt = Field(description="Serve ``max_ongoing_requests``.")
    max_extract_bytes: PositiveInt = Field(
        DEFAULT_MAX_EXTRACT_BYTES, description="Archive extraction limit (bytes)."
    )
    key_store: TorchServeKeyStoreArgs | None = Field(
        None, description="Token authorization keys (None: requests are not checked)."
    )
    driver_num_gpus: float = Field(
        0.0, ge=0, description="Serve ``num_gpus`` per driver replica (fused GPU model nodes)."
    )
    handler_metrics: HandlerMetricsConfig | None = Field(
        None, description="Which ``context.metrics`` are exported (None: TorchServe's defaults)."
    )

    def model_nodes(self) -> dict[str, TorchServeVersionArgs]:
        """Every model node this workflow loads itself (fused or own deployment)."""
        return {**self.inline, **self.deployments}


class GatewayAppArgs(AppArgs):
    """``deployments.gateway:build_gateway``: the MLServe apps gateway."""

    builder: ClassVar[str] = "deployments.gateway:build_gateway"

    database_url: str = Field(description="The platform database (routing tables are read).")
    builtin_url: str = Field(description="The platform's own base URL (built-in models).")
    builtin_app: str = Field(
        "p-v2-{model}", description="Application name template of built-in models."
    )
    builtin_deployment: str = Field(
        TRITON_MODEL_DEPLOYMENT, description="Deployment name inside a built-in model application."
    )
    builtin_handles: Literal["auto", "on", "off"] = Field(
        "auto", description="Call built-in models by DeploymentHandle (auto: per ingress mode)."
    )
    routes_ttl_s: float = Field(1.0, gt=0, description="How long routing tables are cached.")
    upstream_timeout_s: float = Field(300.0, gt=0, description="Upstream request timeout.")
    max_ongoing_requests: PositiveInt = Field(256, description="Serve ``max_ongoing_requests``.")
    num_replicas: PositiveInt | None = Field(None, description="Gateway replicas (Serve's).")


class JobRunnerArgs(AppArgs):
    """``deployments.jobs:build_job_runner``: the built-in Torc runner of one workflow."""

    builder: ClassVar[str] = "deployments.jobs:build_job_runner"

    url: str = Field(description="The platform's base URL (the runner is a Torc REST client).")
    workflow_id: PositiveInt = Field(description="The Torc workflow whose jobs it runs.")
    log_dir: str = Field(description="Where job stdout/stderr files go.")
    poll_interval_s: float = Field(0.5, gt=0, description="Claim polling interval.")
    max_parallel_jobs: PositiveInt | None = Field(None, description="Concurrent jobs at most.")
    remove_app_when_done: bool = Field(True, description="Delete the application when done.")


ALL_APP_ARGS: tuple[type[AppArgs], ...] = (
    TritonModelAppArgs,
    EnsembleAppArgs,
    TorchServeModelAppArgs,
    WorkflowAppArgs,
    GatewayAppArgs,
    JobRunnerArgs,
)
ARGS_BY_BUILDER: dict[str, type[AppArgs]] = {m.builder: m for m in ALL_APP_ARGS}


def args_for_builder(builder: str, args: dict[str, Any]) -> AppArgs:
    """Validate recorded ``args`` with the model of ``builder``.

    Raises:
        KeyError: no application of the platform is built by ``builder``.
        pydantic.ValidationError: the args do not fit the builder's model.
    """
    return ARGS_BY_BUILDER[builder].model_validate(args)
