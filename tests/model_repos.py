"""Builders of small model directories in Triton layout (python, TorchScript, ONNX)."""

from __future__ import annotations

import textwrap
from pathlib import Path

ALL_TYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES"]

ADD_SUB_CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: 8
input [
  {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }},
  {{ name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }}
]
output [
  {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }},
  {{ name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] }}
]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
dynamic_batching {{ max_queue_delay_microseconds: 2000 }}
"""

ADD_SUB_MODEL = '''
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.config = json.loads(args["model_config"])
        self.version = int(args["model_version"])

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            if self.version > 1:
                a = a * self.version
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", (a + b).astype(np.float32)),
                pb_utils.Tensor("OUTPUT1", (a - b).astype(np.float32)),
            ]))
        return responses

    def finalize(self):
        pass
'''


def write_add_sub(repo: Path, name: str = "add_sub", versions: tuple[int, ...] = (1,)) -> Path:
    """Python-backend model: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.

    Version N > 1 multiplies INPUT0 by N first, so tests can tell versions apart.
    """
    model = repo / name
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(ADD_SUB_CONFIG.format(name=name))
    for version in versions:
        (model / str(version)).mkdir(exist_ok=True)
        (model / str(version) / "model.py").write_text(ADD_SUB_MODEL)
    return model


def write_echo_all_types(repo: Path, name: str = "echo_types") -> Path:
    """Python-backend model echoing one input of every Triton datatype (IN_<T> -> OUT_<T>)."""
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    tensors = []
    for kind in ALL_TYPES:
        config_type = "TYPE_STRING" if kind == "BYTES" else f"TYPE_{kind}"
        tensors.append((kind, config_type))
    inputs = ",\n".join(
        f'  {{ name: "IN_{k}" data_type: {t} dims: [ -1 ] optional: true }}' for k, t in tensors
    )
    outputs = ",\n".join(f'  {{ name: "OUT_{k}" data_type: {t} dims: [ -1 ] }}' for k, t in tensors)
    (model / "config.pbtxt").write_text(
        f'backend: "python"\nmax_batch_size: 0\ninput [\n{inputs}\n]\noutput [\n{outputs}\n]\n'
    )
    (model / "1" / "model.py").write_text(textwrap.dedent('''
        import triton_python_backend_utils as pb_utils


        class TritonPythonModel:
            def execute(self, requests):
                responses = []
                for request in requests:
                    outs = [
                        pb_utils.Tensor("OUT_" + t.name()[3:], t.as_numpy())
                        for t in request.inputs()
                    ]
                    responses.append(pb_utils.InferenceResponse(output_tensors=outs))
                return responses
    '''))
    return model


def write_failing_model(repo: Path, name: str = "failing") -> Path:
    """Python-backend model whose execute returns an error for every request."""
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(
        'backend: "python"\nmax_batch_size: 0\n'
        'input [ { name: "X" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
        'output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
    )
    (model / "1" / "model.py").write_text(textwrap.dedent('''
        import triton_python_backend_utils as pb_utils


        class TritonPythonModel:
            def execute(self, requests):
                return [pb_utils.InferenceResponse(error=pb_utils.TritonError("model exploded"))
                        for _ in requests]
    '''))
    return model


TORCH_CONFIG = """
name: "{name}"
platform: "pytorch_libtorch"
max_batch_size: 16
input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 2 ] }} ]
instance_group [ {{ kind: {kind} count: 1 }} ]
dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}
"""


def write_torchscript_linear(repo: Path, name: str = "linear_ts", *, kind: str = "KIND_CPU",
                             delay_us: int = 20000) -> Path:
    """TorchScript ``nn.Linear(4, 2)`` with fixed weights (y = [sum(x), 2*sum(x)] + [1, -1])."""
    import torch

    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    layer = torch.nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    torch.jit.script(layer).save(str(model / "1" / "model.pt"))
    (model / "config.pbtxt").write_text(
        TORCH_CONFIG.format(name=name, kind=kind, delay_us=delay_us)
    )
    return model


def write_onnx_add(repo: Path, name: str = "add_onnx") -> Path:
    """ONNX graph Z = X + Y over FP32 [-1, 3], built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper

    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "Y"], ["Z"])],
        "add",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["N", 3])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.save(proto, str(model / "1" / "model.onnx"))
    (model / "config.pbtxt").write_text(
        f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: 8\n'
        'input [ { name: "X" data_type: TYPE_FP32 dims: [ 3 ] }, '
        '{ name: "Y" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
        'output [ { name: "Z" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
    )
    return model


# -- GPU variants (tests/gpu) ------------------------------------------------------------------

DEVICE_PROBE_TS_CONFIG = """
name: "{name}"
platform: "pytorch_libtorch"
max_batch_size: 16
input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [
  {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 2 ] }},
  {{ name: "OUTPUT__1" data_type: TYPE_FP32 dims: [ 2 ] }}
]
instance_group [ {{ kind: {kind} count: 1 }} ]
{parameters}
"""


def _parameters(params: dict[str, str]) -> str:
    return "\n".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items()
    )


def write_torchscript_device_probe(
    repo: Path, name: str = "gpu_ts", *, kind: str = "KIND_GPU", **params: str
) -> Path:
    """TorchScript model: the linear of ``write_torchscript_linear`` plus where it ran.

    OUTPUT__0 is ``[sum(x) + 1, 2*sum(x) - 1]``; OUTPUT__1 is ``[weight.get_device(),
    x.get_device()]`` per row: ``-1`` on CPU, the CUDA index (0) on a GPU replica. Extra keyword
    arguments become ``parameters`` (``ray_num_gpus="0.5"``).
    """
    import torch

    class DeviceProbe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.linear(x)
            where = torch.tensor(
                [float(self.linear.weight.get_device()), float(x.get_device())],
                dtype=torch.float32, device=x.device,
            )
            return y, where.repeat(x.shape[0], 1)

    module = DeviceProbe()
    with torch.no_grad():
        module.linear.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]]))
        module.linear.bias.copy_(torch.tensor([1.0, -1.0]))
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    torch.jit.script(module).save(str(model / "1" / "model.pt"))
    (model / "config.pbtxt").write_text(
        DEVICE_PROBE_TS_CONFIG.format(name=name, kind=kind, parameters=_parameters(params))
    )
    return model


TORCH_PROBE_CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: {max_batch_size}
input [ {{ name: "X" data_type: TYPE_FP32 dims: [ {dims} ] }} ]
output [ {{ name: "Y" data_type: TYPE_FP32 dims: [ {dims} ] }} ]
instance_group [ {{ kind: {kind} count: 1 }} ]
{batching}
{parameters}
"""

TORCH_PROBE_MODEL = '''
"""Y = X @ W + b with torch on the instance's device; writes where it ran to a JSON report."""
import json
import os
import time

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

REPORT_DIR = {report_dir!r}
DELAY_S = {delay_s!r}


class TritonPythonModel:
    def initialize(self, args):
        self.name = args["model_name"]
        self.kind = args["model_instance_kind"]
        gpu = self.kind == "GPU" and torch.cuda.is_available()
        self.device = torch.device("cuda:" + args["model_instance_device_id"] if gpu else "cpu")
        self.weight = torch.arange(16, dtype=torch.float32, device=self.device).reshape(4, 4)
        self.bias = torch.ones(4, dtype=torch.float32, device=self.device)
        self.reported = False

    def _report(self, y):
        import ray

        record = {{
            "model": self.name,
            "pid": os.getpid(),
            "instance_kind": self.kind,
            "ray_gpu_ids": [str(i) for i in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "torch_cuda_available": torch.cuda.is_available(),
            "tensor_device": str(y.device),
            "device_name": torch.cuda.get_device_name(y.device) if y.is_cuda else "cpu",
        }}
        os.makedirs(REPORT_DIR, exist_ok=True)
        path = os.path.join(REPORT_DIR, "probe-%s-%d.json" % (self.name, os.getpid()))
        with open(path + ".tmp", "w") as fh:
            json.dump(record, fh)
        os.replace(path + ".tmp", path)
        self.reported = True

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            y = torch.from_numpy(np.ascontiguousarray(x)).to(self.device) @ self.weight + self.bias
            if not self.reported:
                self._report(y)
            if DELAY_S:
                time.sleep(DELAY_S)  # a slow model, so that load queues up and Serve scales out
            out = y.cpu().numpy().astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("Y", out)]))
        return responses
'''


def write_torch_probe(
    repo: Path,
    name: str,
    report_dir: Path,
    *,
    kind: str = "KIND_GPU",
    delay_s: float = 0.0,
    max_batch_size: int = 0,
    **params: str,
) -> Path:
    """Python-backend model using torch on its instance's device: ``Y = X @ W + b``.

    ``W`` is ``arange(16).reshape(4, 4)`` and ``b`` ones, so CPU and GPU runs of integer inputs
    agree exactly. Its first request writes ``<report_dir>/probe-<name>-<pid>.json`` with
    ``ray.get_gpu_ids()``, ``CUDA_VISIBLE_DEVICES`` and the tensor's device. ``delay_s`` sleeps
    per request (load for autoscaling). ``max_batch_size > 0`` turns on dynamic batching (inputs
    ``[batch, 4]``); 0 takes any ``[-1, 4]`` unbatched. Extra keyword arguments become
    ``parameters``.
    """
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(
        TORCH_PROBE_CONFIG.format(
            name=name, kind=kind, parameters=_parameters(params), max_batch_size=max_batch_size,
            dims="4" if max_batch_size else "-1, 4",
            batching="dynamic_batching { max_queue_delay_microseconds: 1000 }"
            if max_batch_size else "",
        )
    )
    (model / "1" / "model.py").write_text(
        TORCH_PROBE_MODEL.format(report_dir=str(report_dir), delay_s=float(delay_s))
    )
    return model
