"""Models written the way users write them: nothing of netscope's is imported here.

Used by ``tests/test_any_model.py`` through ``main.py`` (``--model tests.user_models.PlainNet``)
and through a plain Lightning ``Trainer`` with ``default_callbacks()``.
"""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


class PlainNet(nn.Module):
    """A plain MLP that calls its activation as a function (``torch.relu``)."""

    def __init__(self, hidden: int = 64, num_classes: int = 10, in_features: int = 784,
                 bias_init: float | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)
        if bias_init is not None:  # a very negative bias kills every ReLU unit
            nn.init.constant_(self.fc1.bias, bias_init)
            nn.init.constant_(self.fc2.bias, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class DeepSigmoidNet(nn.Module):
    """``depth`` sigmoid layers, written with ``torch.sigmoid``: its gradient vanishes."""

    def __init__(self, depth: int = 12, width: int = 32, num_classes: int = 10,
                 in_features: int = 784) -> None:
        super().__init__()
        sizes = [in_features] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.out = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.layers:
            x = torch.sigmoid(layer(x))
        return self.out(x)


class MyLitNet(L.LightningModule):
    """A user's LightningModule: its own steps, loss names and optimizer."""

    def __init__(self, hidden: int = 64, lr: float = 1e-3, num_classes: int = 10,
                 bias_init: float | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = PlainNet(hidden, num_classes, bias_init=bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
