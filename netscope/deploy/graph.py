"""The deployed network: raw client input in, probabilities out, as one ``nn.Module``.

Normalization is written as the datamodule writes it (``ImageDataModule.normalize``: one
``addcmul`` with a shift and scale made from the same float32 mean and std), so PyTorch
serving gives the same numbers as ``predict``, and the exported graph computes the same
operations. The head is what ``BaseModel.predict_step`` returns: softmax (classification),
the sigmoid as two columns ``[1 - p, p]`` (binary, the two columns ``predictions.csv``
writes) or the raw outputs (regression).
"""

import torch
from lightning.pytorch import LightningModule
from torch import nn

from netscope.deploy.spec import InputSpec
from netscope.models.tta import tta_outputs


class DeployedModel(nn.Module):
    """``network`` with the preprocessing and head of ``spec`` around it.

    Args:
        network: the trained model (its ``forward`` maps prepared inputs to logits).
        spec: the input and output description (normalization, task, test-time augmentation).
    """

    def __init__(self, network: LightningModule, spec: InputSpec) -> None:
        super().__init__()
        self.network = network
        self.spec = spec
        if spec.kind == "image":
            mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
            std = torch.tensor(spec.std).view(1, -1, 1, 1)
            self.register_buffer("shift", -mean / std)
            self.register_buffer("scale", 1.0 / (255.0 * std))

    def preprocess(self, inputs: torch.Tensor) -> torch.Tensor:
        """uint8 images to normalized floats (as in training); vectors pass as they are."""
        if self.spec.kind != "image":
            return inputs.float()
        return torch.addcmul(self.shift, inputs.float(), self.scale)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = tta_outputs(self.network, self.preprocess(inputs), self.spec.tta)
        match self.spec.task:
            case "classification":
                return outputs.softmax(-1)
            case "binary":
                positive = outputs.reshape(-1, 1).sigmoid()
                return torch.cat([1 - positive, positive], dim=1)
            case _:
                return outputs


def deployed_model(network: LightningModule, spec: InputSpec) -> DeployedModel:
    """The deployed model in evaluation mode, float32 on the CPU (what is exported)."""
    return DeployedModel(network.float().cpu(), spec).eval()
