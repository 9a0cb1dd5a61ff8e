"""The parity check: onnxruntime against PyTorch (eval, float32) on the first test inputs.

An exported graph can differ from the network it came from (an operator exported with other
semantics, a layer frozen in training mode); comparing probabilities on real test inputs
catches that before anyone deploys it. Thresholds are the issue's: every probability within
1e-4, and the same predicted class on at least 99.9% of the inputs.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from netscope.core.rundir import RunDir
from netscope.deploy.export import INPUT_NAME
from netscope.deploy.graph import DeployedModel

MAX_ABS_DIFF = 1e-4
MIN_AGREEMENT = 0.999


@dataclass
class Parity:
    """The outcome: ``count`` inputs compared, the largest probability difference, the share
    of inputs with the same predicted class, and whether both are within the thresholds."""

    count: int
    max_abs_diff: float
    same_class: float
    passed: bool
    max_abs_diff_allowed: float = MAX_ABS_DIFF
    same_class_required: float = MIN_AGREEMENT

    def line(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"parity {verdict} on {self.count} test inputs: max |dp| = {self.max_abs_diff:.2e} "
                f"(<= {self.max_abs_diff_allowed:g}), same class on {100 * self.same_class:.2f}% "
                f"(>= {100 * self.same_class_required:g}%)")

    def write(self, run_dir: str | Path) -> Path:
        return RunDir(run_dir).write_parity(asdict(self))


def onnx_session(path: str | Path, threads: int = 0) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for ``path`` (``threads`` 0: onnxruntime's default)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(deployed: DeployedModel, onnx_path: str | Path, inputs: torch.Tensor,
                 batch_size: int = 250) -> Parity:
    """Compare ``deployed`` (PyTorch) with the exported file on ``inputs`` (raw client inputs)."""
    session = onnx_session(onnx_path)
    worst, same = 0.0, 0
    for batch in inputs.split(batch_size):
        with torch.no_grad():
            expected = deployed(batch).numpy()
        got = session.run(None, {INPUT_NAME: batch.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
        same += int((got.argmax(-1) == expected.argmax(-1)).sum())
    agreement = same / max(len(inputs), 1)
    return Parity(len(inputs), worst, agreement, worst <= MAX_ABS_DIFF and agreement >= MIN_AGREEMENT)
