"""``export``: a checkpoint to ``model.onnx`` with its preprocessing inside, checked against PyTorch.

Exporter: the dynamo-based ``torch.onnx.export(..., dynamo=True)``, torch's default and the
path it maintains (the TorchScript exporter is deprecated); it needs ``onnxscript``. The batch
dimension is a symbolic ``Dim``; the input spec and class names are written as ONNX metadata
(``metadata_props``), which onnxruntime exposes as ``custom_metadata_map``.
"""

import json
import warnings
from pathlib import Path

import onnx
import torch

from netscope.deploy.graph import DeployedModel
from netscope.deploy.spec import InputSpec

INPUT_NAME = "inputs"
OUTPUT_NAME = "probabilities"
SPEC_KEY = "netscope_input_spec"


def export_onnx(deployed: DeployedModel, path: str | Path) -> Path:
    """Write ``deployed`` (preprocessing, network, head) to ``path`` as ONNX with a dynamic
    batch dimension and its :class:`InputSpec` as metadata."""
    spec = deployed.spec
    example = example_inputs(spec, batch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's notes on internals, not the user's concern
        program = torch.onnx.export(
            deployed, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={"inputs": {0: torch.export.Dim("batch")}}, dynamo=True,
            verbose=False, optimize=True,
        )
    path = Path(path)
    program.save(str(path))
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {
        SPEC_KEY: spec.to_json(),
        "class_names": json.dumps(list(spec.class_names)),
        "input": f"{spec.dtype} (batch, {', '.join(map(str, spec.shape))})"
                 + (" RGB pixels 0-255, channels first" if spec.kind == "image" else ""),
        "output": f"{OUTPUT_NAME} (batch, {len(spec.class_names)})",
    })
    onnx.save(proto, str(path))
    return path


def read_spec(path: str | Path) -> InputSpec:
    """The :class:`InputSpec` stored in an exported file."""
    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    if SPEC_KEY not in props:
        raise KeyError(f"no {SPEC_KEY} metadata")
    return InputSpec.from_json(props[SPEC_KEY])


def example_inputs(spec: InputSpec, batch: int) -> torch.Tensor:
    """A batch of valid inputs of the spec's shape and dtype (for tracing the graph)."""
    generator = torch.Generator().manual_seed(0)
    if spec.kind == "image":
        return torch.randint(0, 256, (batch, *spec.shape), dtype=torch.uint8, generator=generator)
    return torch.rand((batch, *spec.shape), generator=generator)
