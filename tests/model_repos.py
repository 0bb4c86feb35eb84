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
