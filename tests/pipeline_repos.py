"""Model directories for pipeline tests: decoupled, generate, BLS, Logger and ensemble models.

Each runs unchanged on a real tritonserver 2.51 and on the platform (differential tests).
"""

from __future__ import annotations

from pathlib import Path

TEXT_IO = """
input [ { name: "text_input" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "text_output" data_type: TYPE_STRING dims: [ 1 ] } ]
"""

GEN_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
            words = [t.decode().upper() for t in text.ravel()]
            out = pb_utils.Tensor("text_output", np.array(words, dtype=object))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
"""

# One response per word (sleeping ``delay`` seconds before each), then a flag-only FINAL.
# Words "raise" and "error" make it raise, or send an error response with FINAL, instead.
DECOUPLED_MODEL = """
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.delay = float(params.get("delay_s", {}).get("string_value", "0"))

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
            for word in text.ravel()[0].decode().split():
                time.sleep(self.delay)
                if word == "raise":
                    raise pb_utils.TritonModelException("boom after responses")
                if word == "error":
                    sender.send(
                        pb_utils.InferenceResponse(error=pb_utils.TritonError("error response")),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                    )
                    break
                out = pb_utils.Tensor("text_output", np.array([word], dtype=object))
                sender.send(pb_utils.InferenceResponse(output_tensors=[out]))
            else:
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
"""

# BLS: request parameter "target" names the callee (FP32 [4] INPUT0 -> OUTPUT0 models such as
# add_sub), "mode" is exec | async | async2 (two concurrent async_exec); OUTPUT0 is the callee's
# OUTPUT0 (twice stacked for async2), or an error response carrying the callee's error text.
BLS_MODEL = """
import asyncio
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            params = json.loads(request.parameters())
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            bls = pb_utils.InferenceRequest(
                model_name=params.get("target", "add_sub"),
                requested_output_names=["OUTPUT0"],
                inputs=[pb_utils.Tensor("INPUT0", x), pb_utils.Tensor("INPUT1", x)],
            )
            mode = params.get("mode", "exec")
            start = time.monotonic()
            if mode == "exec":
                results = [bls.exec()]
            elif mode == "async":
                results = [await bls.async_exec()]
            else:
                results = list(await asyncio.gather(bls.async_exec(), bls.async_exec()))
            elapsed = np.array([[time.monotonic() - start]], dtype=np.float32)
            failed = [r for r in results if r.has_error()]
            if failed:
                error = pb_utils.TritonError(failed[0].error().message())
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            outs = [pb_utils.get_output_tensor_by_name(r, "OUTPUT0").as_numpy() for r in results]
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", np.concatenate(outs, axis=0)),
                pb_utils.Tensor("ELAPSED", elapsed),
            ]))
        return responses
"""

BLS_CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: 8
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [
  {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }},
  {{ name: "ELAPSED" data_type: TYPE_FP32 dims: [ 1 ] }}
]
"""

LOGGER_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        pb_utils.Logger.log_info("logger model initialized")

    def execute(self, requests):
        logger = pb_utils.Logger
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text_input")
            logger.log_info("info line " + text.as_numpy().ravel()[0].decode())
            logger.log_warn("warn line")
            logger.log_error("error line")
            logger.log_verbose("verbose line")
            logger.log("plain log line", logger.INFO)
            out = pb_utils.Tensor("text_output", text.as_numpy())
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
"""


def _write(repo: Path, name: str, config: str, model_py: str) -> Path:
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(config)
    (model / "1" / "model.py").write_text(model_py)
    return model


def write_text_generator(repo: Path, name: str = "gen") -> Path:
    """Non-decoupled text model: ``text_output`` is ``text_input`` upper-cased."""
    config = f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n{TEXT_IO}'
    return _write(repo, name, config, GEN_MODEL)


def write_decoupled_words(repo: Path, name: str = "dec", delay_s: float = 0.0) -> Path:
    """Decoupled model: one ``text_output`` response per word of ``text_input``."""
    config = (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n{TEXT_IO}'
        "model_transaction_policy { decoupled: true }\n"
        f'parameters {{ key: "delay_s" value: {{ string_value: "{delay_s}" }} }}\n'
    )
    return _write(repo, name, config, DECOUPLED_MODEL)


def write_bls_caller(repo: Path, name: str = "bls") -> Path:
    """BLS model calling the model named by request parameter ``target`` (see BLS_MODEL)."""
    return _write(repo, name, BLS_CONFIG.format(name=name), BLS_MODEL)


def write_logger_model(repo: Path, name: str = "logger") -> Path:
    """Text echo that writes every ``pb_utils.Logger`` level."""
    config = f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n{TEXT_IO}'
    return _write(repo, name, config, LOGGER_MODEL)


BLS_SYNC_MODEL = """
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            params = json.loads(request.parameters())
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            result = pb_utils.InferenceRequest(
                model_name=params.get("target", "add_sub"),
                requested_output_names=["OUTPUT0"],
                inputs=[pb_utils.Tensor("INPUT0", x), pb_utils.Tensor("INPUT1", x)],
            ).exec()
            if result.has_error():
                error = pb_utils.TritonError(result.error().message())
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            out = pb_utils.get_output_tensor_by_name(result, "OUTPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", out),
                pb_utils.Tensor("ELAPSED", np.zeros(out.shape[:1] + (1,), np.float32)),
            ]))
        return responses
"""

SLEEPY_MODEL = """
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep({sleep_s})
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", a + b), pb_utils.Tensor("OUTPUT1", a - b),
            ]))
        return responses
"""

SLEEPY_CONFIG = """
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
instance_group [ {{ kind: KIND_CPU count: {count} }} ]
"""


def write_bls_sync_caller(repo: Path, name: str = "bls_sync") -> Path:
    """BLS model with a synchronous ``execute`` calling ``exec()`` (see BLS_SYNC_MODEL)."""
    return _write(repo, name, BLS_CONFIG.format(name=name), BLS_SYNC_MODEL)


def write_sleepy_add_sub(
    repo: Path, name: str = "sleepy", sleep_s: float = 1.0, count: int = 1
) -> Path:
    """add_sub (OUTPUT0 = a + b, OUTPUT1 = a - b) that sleeps ``sleep_s`` per execute."""
    config = SLEEPY_CONFIG.format(name=name, count=count)
    return _write(repo, name, config, SLEEPY_MODEL.replace("{sleep_s}", str(sleep_s)))


# -- ensembles --------------------------------------------------------------------------------

AFFINE_MODEL = """
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        get = lambda k, d: float(params.get(k, {}).get("string_value", d))
        self.scale, self.offset = get("scale", "1"), get("offset", "0")
        self.sleep_s = get("sleep_s", "0")
        self.version_bonus = 100.0 * (int(args["model_version"]) - 1)

    def execute(self, requests):
        if self.sleep_s:
            time.sleep(self.sleep_s)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            y = (x * self.scale + self.offset + self.version_bonus).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", y)]))
        return responses
"""


def _params(params: dict[str, object]) -> str:
    return "".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n' for k, v in params.items()
    )


def write_affine(
    repo: Path,
    name: str,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    sleep_s: float = 0.0,
    versions: tuple[int, ...] = (1,),
    policy: str = "",
) -> Path:
    """FP32 [4] ``INPUT0 -> OUTPUT0 = INPUT0 * scale + offset + 100 * (version - 1)``."""
    config = (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 8\n{policy}\n'
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        + _params({"scale": scale, "offset": offset, "sleep_s": sleep_s})
    )
    model = _write(repo, name, config, AFFINE_MODEL)
    for version in versions:
        (model / str(version)).mkdir(exist_ok=True)
        (model / str(version) / "model.py").write_text(AFFINE_MODEL)
    return model


def write_ensemble(
    repo: Path,
    name: str,
    steps: list[tuple[str, int, dict[str, str], dict[str, str]]],
    *,
    inputs: tuple[str, ...] = ("IN",),
    outputs: tuple[str, ...] = ("OUT",),
    params: dict[str, object] | None = None,
) -> Path:
    """An ensemble of FP32 [4] tensors; each step is (model, version, input_map, output_map)."""

    def tensors(kind: str, names: tuple[str, ...]) -> str:
        entries = ", ".join(f'{{ name: "{n}" data_type: TYPE_FP32 dims: [ 4 ] }}' for n in names)
        return f"{kind} [ {entries} ]\n"

    def mapping(kind: str, pairs: dict[str, str]) -> str:
        return "".join(f'{kind} {{ key: "{k}" value: "{v}" }} ' for k, v in pairs.items())

    step_text = "".join(
        f'step [ {{ model_name: "{m}" model_version: {v} {mapping("input_map", i)} '
        f"{mapping('output_map', o)} }} ]\n"
        for m, v, i, o in steps
    )
    config = (
        f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: 8\n'
        + tensors("input", inputs)
        + tensors("output", outputs)
        + f"ensemble_scheduling {{\n{step_text}}}\n"
        + _params(params or {})
    )
    model = repo / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(config)
    return model


def write_two_step_ensemble(
    repo: Path, name: str = "ens", pre: str = "pre", post: str = "post", **params: object
) -> Path:
    """``pre`` (x + 1) then ``post`` (x * 2), both written too: OUT = (IN + 1) * 2."""
    write_affine(repo, pre, offset=1.0)
    write_affine(repo, post, scale=2.0)
    return write_ensemble(
        repo,
        name,
        [
            (pre, -1, {"INPUT0": "IN"}, {"OUTPUT0": "mid"}),
            (post, -1, {"INPUT0": "mid"}, {"OUTPUT0": "OUT"}),
        ],
        params=params or None,
    )



def write_two_branch_ensemble(repo: Path, name: str, a: str, b: str) -> Path:
    """``a`` and ``b`` side by side on the same input: ``IN -> a -> A`` and ``IN -> b -> B``.

    The step models are written by the caller (their offsets and sleeps differ per test).
    """
    return write_ensemble(
        repo,
        name,
        [
            (a, -1, {"INPUT0": "IN"}, {"OUTPUT0": "A"}),
            (b, -1, {"INPUT0": "IN"}, {"OUTPUT0": "B"}),
        ],
        outputs=("A", "B"),
    )

WARMUP_SAMPLE = (
    'model_warmup [ {{ name: "zero_warm" batch_size: {batch} count: {count} inputs {{ key: '
    '"INPUT0" value: {{ data_type: TYPE_FP32 dims: [ 4 ] zero_data: true }} }} }} ]\n'
)


def write_warm_affine(
    repo: Path, name: str = "warm", *, batch: int = 2, count: int = 3, fail: bool = False
) -> Path:
    """``write_affine`` with a zero-data warmup sample (``fail``: execute raises)."""
    model = write_affine(repo, name)
    config = model / "config.pbtxt"
    config.write_text(config.read_text() + WARMUP_SAMPLE.format(batch=batch, count=count))
    if fail:
        code = (
            (model / "1" / "model.py")
            .read_text()
            .replace(
                "if self.sleep_s:\n            time.sleep(self.sleep_s)",
                'raise pb_utils.TritonModelException("warmup boom")',
            )
        )
        (model / "1" / "model.py").write_text(code)
    return model


AUTO_COMPLETE_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        auto_complete_model_config.add_input(
            {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}
        )
        auto_complete_model_config.add_output(
            {"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}
        )
        auto_complete_model_config.set_max_batch_size(4)
        return auto_complete_model_config

    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor(
                "OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() * 3
            )])
            for r in requests
        ]
"""


def write_auto_complete(repo: Path, name: str = "auto") -> Path:
    """A model whose config.pbtxt names only the backend; auto_complete_config adds the rest."""
    return _write(repo, name, f'name: "{name}"\nbackend: "python"\n', AUTO_COMPLETE_MODEL)


def write_async_sleepy_add_sub(repo: Path, name: str = "asleepy", sleep_s: float = 1.0) -> Path:
    """``write_sleepy_add_sub`` with ``async def execute`` (awaits ``asyncio.sleep``)."""
    code = SLEEPY_MODEL.replace("{sleep_s}", str(sleep_s))
    code = code.replace("import time\n", "import asyncio\n").replace(
        "    def execute(self, requests):\n        time.sleep(",
        "    async def execute(self, requests):\n        await asyncio.sleep(",
    )
    return _write(repo, name, SLEEPY_CONFIG.format(name=name, count=1), code)


BLS_DECOUPLED_MODEL = """
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            params = json.loads(request.parameters())
            text = pb_utils.get_input_tensor_by_name(request, "text_input")
            bls = pb_utils.InferenceRequest(
                model_name=params["target"],
                requested_output_names=["text_output"],
                inputs=[text],
            )
            if params.get("mode") == "async":
                results = await bls.async_exec(decoupled=True)
            else:
                results = bls.exec(decoupled=True)
            words = []
            for result in results:
                if result.has_error():
                    words.append("ERROR: " + result.error().message())
                elif result.output_tensors():
                    out = pb_utils.get_output_tensor_by_name(result, "text_output")
                    words.append(out.as_numpy().ravel()[0].decode())
            joined = np.array([" | ".join(words)], dtype=object)
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("text_output", joined)]
            ))
        return responses
"""


def write_bls_decoupled_caller(repo: Path, name: str = "bls_dec") -> Path:
    """Calls the decoupled model named by parameter ``target``; joins its responses with `` | ``."""
    config = f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n{TEXT_IO}'
    return _write(repo, name, config, BLS_DECOUPLED_MODEL)
