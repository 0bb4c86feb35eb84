"""Typed arguments of the gRPC ingress application (``inference.GRPCInferenceService``).

``serve_config.yaml`` names the builder ``entrypoint.grpc_app:build_grpc_app``, which layers the
control plane's ``grpc`` settings (``CP_GRPC__*``) under these and hands the result to
``deployments.grpc_ingress:build_grpc_ingress``, which validates the same JSON with this model.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

DEFAULT_GRPC_PORT = 8001
DEFAULT_MAX_MESSAGE_BYTES = 2**31 - 1  # Triton's own server and tritonclient use INT32_MAX
GRPC_INGRESS_APP = "grpc"
GRPC_INGRESS_DEPLOYMENT = "GrpcIngress"


class GrpcIngressArgs(BaseModel):
    """Arguments of ``deployments.grpc_ingress:build_grpc_ingress``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address the gRPC server binds (loopback default).")
    port: int = Field(DEFAULT_GRPC_PORT, ge=1, le=65535, description="gRPC port (Triton's 8001).")
    max_receive_message_bytes: PositiveInt = Field(
        DEFAULT_MAX_MESSAGE_BYTES, description="Largest request message the server accepts."
    )
    max_send_message_bytes: PositiveInt = Field(
        DEFAULT_MAX_MESSAGE_BYTES, description="Largest response message the server sends."
    )
    control_plane_url: str = Field(
        "http://127.0.0.1:8080",
        description="Where management RPCs (repository, server metadata, readiness, all-model "
        "statistics) reach the control plane's v2 HTTP API. Inference never goes there.",
    )
    app_template: str = Field(
        "p-v2-{model}", description="Serve application name of a loaded model."
    )
    front: Literal["haproxy", "python"] = Field(
        "haproxy",
        description="What listens on the port: HAProxy routing unary inference straight to the "
        "model's replicas (the rest to the ingress's Python server), or that Python server alone.",
    )
    num_replicas: PositiveInt = Field(
        1,
        description="Ingress replicas. Replicas on one node share the port (SO_REUSEPORT); the "
        "kernel spreads connections over them.",
    )
    management_allow_remote: bool = Field(
        False,
        description="Serve repository load/unload to non-loopback gRPC peers. Off: they get "
        "PERMISSION_DENIED, as the HTTP port's management guard answers them.",
    )
    request_timeout_s: float = Field(
        300.0, gt=0, description="How long a management call to the control plane may take."
    )

    @classmethod
    def parse(cls, args: Self | dict[str, Any] | None) -> Self:
        """The validated arguments, from a dict (what Serve passes) or an instance."""
        if isinstance(args, cls):
            return args
        return cls.model_validate(args or {})
