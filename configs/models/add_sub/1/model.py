"""Python-backend example model: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.

Runs unchanged on a real Triton server (python backend) and on the platform's built-in server.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Element-wise sum and difference of two FP32 tensors."""

    def initialize(self, args):
        """Nothing to set up; ``args`` carries the model config as JSON."""
        self.model_name = args.get("model_name", "add_sub")

    def execute(self, requests):
        """One response per request (dynamic batching may hand over several)."""
        responses = []
        for request in requests:
            in0 = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            in1 = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out0 = pb_utils.Tensor("OUTPUT0", (in0 + in1).astype(np.float32))
            out1 = pb_utils.Tensor("OUTPUT1", (in0 - in1).astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses

    def finalize(self):
        """Nothing to release."""
