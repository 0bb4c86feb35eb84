"""Platform settings: one pydantic-settings tree, env prefix ``CP_``, nested with ``__``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseModel):
    """Where the desired state lives (``CP_DB__URL``)."""

    url: str = Field(
        default="",
        description="SQLAlchemy URL. Empty means a SQLite file under the data dir "
        "(``<data_dir>/platform.db``); use ``postgresql+psycopg2://...`` for several replicas.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement.")
    pool_size: int = Field(
        default=16,
        ge=1,
        description="Connections each replica keeps open (PostgreSQL only); up to half as many "
        "more are opened under bursts and closed when returned. Requests beyond the pool "
        "open a new server process each: with 5, eight torc runners made PostgreSQL start 17 "
        "backends a second.",
    )
    prepare_threshold: int = Field(
        default=3,
        ge=0,
        description="PostgreSQL only: how many times a torc hot-path statement runs on a "
        "connection before it is prepared there (server-side PREPARE, planned once). 0 turns "
        "it off; do that behind a pooler in transaction mode (PgBouncer: it tracks only "
        "protocol-level prepared statements, not SQL PREPARE), where a prepared statement "
        "does not follow the client to the next server connection.",
    )


class StoreSettings(BaseModel):
    """The artifact store: model repositories, .mar and .war archives."""

    root: str = Field(
        default="",
        description="Store root directory. Empty means ``<data_dir>/store``. On a multi-node "
        "cluster this must be a path every node sees (shared filesystem), unless ``url`` is set.",
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest accepted upload or download, in bytes."
    )
    url: str = Field(
        default="",
        description="Object-store URL of the artifact store (fsspec, e.g. ``s3://bucket/prefix``; "
        "``pip install .[s3]`` for S3). When set, artifacts are published there and replicas "
        "download them to a node-local cache, so no shared filesystem is needed; the root "
        "stays each control-plane replica's working copy.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options passed to every node (e.g. ``endpoint_url``). Not "
        "for secrets: they are recorded with each application; give credentials through the "
        "environment (AWS_* variables, instance roles).",
    )


class AuthSettings(BaseModel):
    """Admin credentials and who may reach management endpoints."""

    admin_user: str = Field(default="admin", description="Bootstrap admin created on first start.")
    admin_password: str = Field(default="admin", description="Bootstrap admin password.")
    management_allow_remote: bool = Field(
        default=False,
        description="Serve management endpoints to non-loopback clients without credentials. "
        "Off by default: remote callers must present admin credentials.",
    )
    management_require_auth: bool = Field(
        default=False,
        description="Require admin credentials on management endpoints from every client. Turn "
        "on when the HTTP port binds a non-loopback address behind the HAProxy ingress (which "
        "hides the client address).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Peers whose X-Forwarded-For header is believed (the Serve ingress).",
    )


class ServingSettings(BaseModel):
    """Defaults for the Ray Serve applications the control plane creates."""

    max_ongoing_requests: int = Field(
        default=64, ge=1, description="Per replica. Serve's default of 5 collapses under load."
    )
    replica_num_cpus: float = Field(
        default=0.0, ge=0, description="CPUs reserved per model replica (0 = no reservation)."
    )
    load_timeout_s: float = Field(
        default=180.0, gt=0, description="How long a synchronous load waits for RUNNING."
    )
    gpu_fallback_to_cpu: bool = Field(
        default=False,
        description="Run KIND_GPU models on CPU when the cluster has no GPU (else they wait).",
    )
    reconcile_period_s: float = Field(
        default=15.0, gt=0, description="How often the reconciler compares the DB with Ray."
    )
    startup_models: list[str] = Field(
        default_factory=list, description="Repository models loaded at start (Triton --load-model)."
    )
    gateway_routes_ttl_s: float = Field(
        default=0.5, gt=0, description="The apps gateway's routing staleness bound (seconds)."
    )
    gateway_await_writes: bool = Field(
        default=True,
        description="Routing writes (apps, routes, consumers, users, keys) answer once every "
        "gateway replica enforces them (gateway_routes_ttl_s after the commit).",
    )
    unsupported_config: Literal["refuse", "warn"] = Field(
        default="refuse",
        description=(
            "A config.pbtxt field the platform does not implement (sequence_batching, "
            "response_cache, ...): refuse the load with 400 naming it, or warn (log it, ignore it)."
        ),
    )


class TorchServeSettings(BaseModel):
    """TorchServe compatibility: stores, URL downloads, startup archives (``CP_TORCHSERVE__*``)."""

    allowed_urls: list[str] = Field(
        default_factory=lambda: [r"file://.*", r"http(s)?://.*"],
        description="Regexes (full match) a register url must match to be downloaded "
        "(TorchServe's allowed_urls, the CVE-2023-43654 fix). Narrow this in production.",
    )
    max_download_bytes: int = Field(
        default=1024**3, ge=1, description="Largest .mar/.war accepted from a URL, in bytes."
    )
    max_extract_bytes: int = Field(
        default=8 * 1024**3, ge=1, description="Largest total uncompressed archive size, in bytes."
    )
    install_py_dep_per_model: bool = Field(
        default=False,
        description="pip-install a .mar's requirements.txt into the model's own directory.",
    )
    default_workers_per_model: int = Field(
        default=0, ge=0, description="Workers when POST /models names no initial_workers."
    )
    workflow_execution: str = Field(
        default="auto",
        pattern="^(auto|fused|separate)$",
        description="auto: model nodes run in the driver replica unless they need their own "
        "scaling (max-workers > 1); fused: all in the driver; separate: one deployment per node.",
    )
    load_models: list[str] = Field(
        default_factory=list,
        description="Model archives registered at start: 'file.mar' or 'name=file.mar' "
        "(model store names or URLs), each with 1 worker.",
    )
    load_workflows: list[str] = Field(
        default_factory=list,
        description="Workflow archives registered at start: 'file.war' or 'name=file.war'.",
    )
    number_of_gpu: int | None = Field(
        default=None,
        ge=0,
        description="TorchServe's number_of_gpu: 0 runs every model on CPU (deviceType gpu "
        "included); None uses the cluster's GPUs.",
    )
    gpus_per_replica: float = Field(
        default=1.0,
        gt=0,
        description="GPUs each replica of a deviceType: gpu model reserves (Serve num_gpus; "
        "fractions share a GPU between replicas).",
    )
    token_auth: bool = Field(
        default=False,
        description="TorchServe 0.12 token authorization: ``Authorization: Bearer <key>`` on "
        "management (management key), inference, ping and workflow predictions (inference key), "
        "keys in ``key_file``. Off by default while the port binds loopback; turn it on whenever "
        "the port is reachable from other hosts.",
    )
    token_expiration_min: float = Field(
        default=60.0,
        gt=0,
        description="Minutes a management or inference key stays valid (TorchServe's "
        "token_expiration_min); rotate with ``/token?type=`` and the API key.",
    )
    metrics_config: str | None = Field(
        default=None,
        description="TorchServe's metrics_config: a metrics.yaml whose model_metrics declare "
        "handler metrics (type, dimensions); None uses TorchServe's default file.",
    )
    model_metrics_auto_detect: bool = Field(
        default=True,
        description="Export handler metrics that metrics_config does not declare (TorchServe's "
        "model_metrics_auto_detect, off by default there).",
    )
    key_file: str = Field(
        default="",
        description="Where key_file.json (TorchServe's format, mode 0600) is written. Empty means "
        "``<data_dir>/key_file.json``. Every control-plane replica must see the same file "
        "(the database holds only digests): a missing file at start regenerates all keys.",
    )
    token_cache_ttl_s: float = Field(
        default=1.0,
        gt=0,
        description="How long a model or workflow replica caches the inference key digest read "
        "from the database (an old key keeps working there at most this long after a rotation).",
    )


class GrpcSettings(BaseModel):
    """The gRPC endpoint, ``inference.GRPCInferenceService`` (``CP_GRPC__*``).

    Read by ``entrypoint.grpc_app`` when ``serve run serve_config.yaml`` deploys the ``grpc``
    application; its ``args`` there are layered over these.
    """

    host: str = Field(default="127.0.0.1", description="Address the gRPC server binds.")
    port: int = Field(default=8001, ge=1, le=65535, description="gRPC port (Triton's 8001).")
    max_receive_message_bytes: int = Field(
        default=2**31 - 1, ge=1, description="Largest request message accepted, in bytes."
    )
    max_send_message_bytes: int = Field(
        default=2**31 - 1, ge=1, description="Largest response message sent, in bytes."
    )
    num_replicas: int = Field(
        default=1, ge=1, description="Ingress replicas (replicas on one node share the port)."
    )
    front: Literal["haproxy", "python"] = Field(
        default="haproxy",
        description="haproxy: HAProxy on the port sends unary inference straight to the model's "
        "replicas; python: the ingress's Python server alone (every call one handle hop).",
    )
    control_plane_url: str = Field(
        default="",
        description="Where management RPCs reach the control plane's HTTP API; empty means "
        "``public_url``. On several nodes, an address every node reaches.",
    )
    management_allow_remote: bool = Field(
        default=False,
        description="Answer repository RPCs from non-loopback gRPC peers without credentials.",
    )


class Settings(BaseSettings):
    """Everything the control plane reads from the environment or ``serve_config.yaml`` args."""

    model_config = SettingsConfigDict(
        env_prefix="CP_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    environment: str = Field(default="development", description="development | production.")
    data_dir: str = Field(default="./var", description="Root for embedded state (SQLite, store).")
    public_url: str = Field(
        default="http://127.0.0.1:8080", description="How clients reach the HTTP port."
    )
    metrics_torc_workflows: int = Field(
        default=100,
        ge=0,
        description="How many of the newest Torc workflows get their own torc_* series on "
        "/metrics (a series per workflow would grow without end); the *_all families count "
        "every workflow.",
    )
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    torchserve: TorchServeSettings = Field(default_factory=TorchServeSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: str) -> str:
        return str(Path(value).expanduser().resolve())

    @property
    def database_url(self) -> str:
        """The effective SQLAlchemy URL."""
        return self.db.url or f"sqlite:///{Path(self.data_dir) / 'platform.db'}"

    @property
    def key_file(self) -> Path:
        """The effective TorchServe key_file.json path."""
        return Path(self.torchserve.key_file or Path(self.data_dir) / "key_file.json")

    @property
    def store_root(self) -> Path:
        """The effective artifact store root."""
        return Path(self.store.root or Path(self.data_dir) / "store").resolve()

    def enforce_production_secrets(self) -> None:
        """Refuse the placeholder admin password outside development.

        Raises:
            ValueError: when running in production with the default password.
        """
        if self.environment != "development" and self.auth.admin_password == "admin":
            raise ValueError(
                "Got the placeholder admin password in environment "
                f"{self.environment!r}; set CP_AUTH__ADMIN_PASSWORD."
            )


def build_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from the environment, with ``serve_config.yaml`` args layered on top."""
    return Settings(**(overrides or {}))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings from the environment only (CLI tools)."""
    return Settings()
