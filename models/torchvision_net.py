"""Any torchvision classification network (ResNet, DenseNet, MobileNet, EfficientNet, ...),
from scratch or pretrained, with its head replaced for the data set's classes.

What the contract's model arguments mean here:

- ``activation``: left at ``None``, every architecture keeps its own non-linearities
  (ReLU, SiLU, Hardswish, GELU, ...). A name replaces every activation *module* of the
  network (``nn.ReLU``, ``nn.ReLU6``, ``nn.SiLU``, ``nn.GELU``, ``nn.Hardswish``, ``nn.ELU``,
  ``nn.LeakyReLU``, ``nn.Mish``) by that activation; gates (``Sigmoid``, ``Hardsigmoid`` in
  squeeze-excitation blocks) stay, and so do activations torchvision calls as functions in
  ``forward`` (e.g. DenseNet's final ``F.relu``). With pretrained weights this changes
  the features the weights were trained for, so it is allowed but warned about.
- ``init``: applies to the whole network when training from scratch (``default`` keeps
  torchvision's own scheme), and only to the new head when ``weights`` are loaded.
- Input channels other than 3 (1 for MNIST): the first convolution is rebuilt for them.
  With pretrained weights its kernel becomes the mean over the RGB kernels times 3/C, so
  a grey image gives exactly what the RGB network gives for that grey repeated thrice.
- ``freeze_backbone``: every parameter but the new head's stops receiving gradients, and
  the backbone's BatchNorm layers stay in eval mode (their running statistics frozen too).

Pretrained weights expect ImageNet-like inputs; this project normalizes with the data
set's own statistics, which fine-tuning (the head, and BatchNorm when not frozen) absorbs.
"""

import difflib
import itertools
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
import torchvision
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.func import functional_call
from torchvision.models import get_model, get_model_weights, list_models

from netscope.core.errors import UserError
from netscope.models.activations import ActivationName
from netscope.models.base import BaseModel
from netscope.models.initialization import apply_init

#: Activation modules ``activation`` replaces (gates such as Sigmoid are left alone).
REPLACEABLE_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.ELU, nn.LeakyReLU, nn.Mish)

#: Builder arguments for training from scratch: no auxiliary heads (their outputs would be
#: ignored), and torchvision's own init without its deprecation warning. (With weights,
#: torchvision insists on its own values.)
_SCRATCH_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def classification_architectures() -> list[str]:
    """Names of torchvision's image classification models (``torchvision.models``)."""
    return list_models(module=torchvision.models)


class TorchvisionNet(BaseModel):
    """A torchvision classification architecture chosen by name."""

    def __init__(
        self,
        *args: Any,
        arch: str = "resnet18",
        weights: str | None = None,
        freeze_backbone: bool = False,
        activation: ActivationName | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the architecture with a new head; the other arguments are :class:`BaseModel`'s.

        Args:
            arch: a torchvision classification model name: ``resnet18``, ``densenet121``,
                ``mobilenet_v3_small``, ``efficientnet_b0``, ... (see
                :func:`classification_architectures`).
            weights: ``None`` to train from scratch; a torchvision weights name of that
                architecture (``DEFAULT``, ``IMAGENET1K_V1``, ...), downloaded once into the
                torch hub folder; or the path of a local ``.pth``/``.pt`` state dict.
            freeze_backbone: train only the new head.
            activation: ``None`` keeps the architecture's own activations; a name replaces
                them (see the module docstring).
        """
        self.arch = arch
        self.weights = weights
        self.freeze_backbone = freeze_backbone
        super().__init__(*args, activation=activation, **kwargs)

    # ----------------------------------------------------------------- building
    def configure_network(self) -> None:
        known = classification_architectures()
        if self.arch not in known:
            close = difflib.get_close_matches(self.arch, known, n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise UserError(f"'{self.arch}' is not a torchvision classification architecture.{hint} "
                            f"Choose one of: {', '.join(known)}.")
        self.network = self._build()
        self.head_name = _find_head(self.network, self.arch)
        if self.weights is not None and _is_path(self.weights):
            _load_local(self.network, Path(self.weights), self.head_name)
        channels = self.input_shape[0] if len(self.input_shape) == 3 else 1
        if channels != 3:
            _adapt_first_conv(self.network, channels, keep_weights=self.weights is not None)
        self._replace_head()
        if self.hparams.activation is not None:
            self._replace_activations()
        if self.freeze_backbone:
            if self.weights is None:
                warnings.warn("freeze_backbone without weights: only the head learns, on random features.",
                              stacklevel=2)
            for name, parameter in self.network.named_parameters():
                parameter.requires_grad = name.startswith(self.head_name + ".")
        self._check_input_size()
        # Lightning keeps each module's mode as it finds it (it restores modes after
        # validation rather than calling train()), so the frozen norms start in eval mode.
        self._freeze_norms()

    def _build(self) -> nn.Module:
        if self.weights is None or _is_path(self.weights):
            return get_model(self.arch, weights=None, **_SCRATCH_KWARGS.get(self.arch, {}))
        enum = get_model_weights(self.arch)
        try:
            weights = enum.verify(self.weights)
        except KeyError:
            raise UserError(f"'{self.weights}' is not a weights name of {self.arch}. Choose one of: "
                            f"{', '.join(enum.__members__)}, or give the path of a local .pth file."
                            ) from None
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        try:
            return get_model(self.arch, weights=weights)
        # Offline, refused, truncated or corrupt: each means "the file is not usable here".
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UserError(
                f"Could not load the {weights} weights of {self.arch} ({detail}). Without a network, "
                f"download {weights.url} on a machine that has one and put the file at {target} (torch's "
                f"hub folder; set TORCH_HOME to move it), or pass the file's path as "
                f"--model.init_args.weights. A damaged file at that place must be deleted first."
            ) from error

    def _replace_head(self) -> None:
        parent_name, _, child = self.head_name.rpartition(".")
        parent = self.network.get_submodule(parent_name) if parent_name else self.network
        old = getattr(parent, child)
        if isinstance(old, nn.Linear):
            new: nn.Module = nn.Linear(old.in_features, self.output_dim)
        else:  # SqueezeNet classifies with a 1x1 convolution
            new = nn.Conv2d(old.in_channels, self.output_dim, old.kernel_size, old.stride, old.padding)
        setattr(parent, child, new)

    def _replace_activations(self) -> None:
        targets = [name for name, module in self.network.named_modules()
                   if isinstance(module, REPLACEABLE_ACTIVATIONS)]
        for name in targets:
            parent_name, _, child = name.rpartition(".")
            parent = self.network.get_submodule(parent_name) if parent_name else self.network
            setattr(parent, child, self.make_activation())
        if self.weights is not None and targets:
            warnings.warn(f"activation={self.hparams.activation} replaces the activations the pretrained "
                          f"{self.arch} weights were trained with; expect worse features.", stacklevel=2)
        rank_zero_info(f"{self.arch}: {len(targets)} activation modules set to {self.hparams.activation}")

    def _check_input_size(self) -> None:
        """Run one input through the network now, so a size it cannot take is a clear error.

        It runs on the meta device (shapes only, no arithmetic), with meta copies of the
        parameters swapped in, so it costs next to nothing.
        """
        shape = self.input_shape if len(self.input_shape) == 3 else (1, *self.input_shape)
        meta = {name: tensor.to("meta") for name, tensor in
                itertools.chain(self.network.named_parameters(), self.network.named_buffers())}
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                functional_call(self.network, meta, (torch.zeros(1, *shape, device="meta"),))
        except (RuntimeError, AssertionError, ValueError) as error:
            raise UserError(f"{self.arch} cannot take inputs of shape {tuple(shape)} "
                            f"({str(error).splitlines()[0]}). Use a larger --data.init_args.image_size "
                            f"(many torchvision models need 32 px or more; ViTs need their own size, "
                            f"224) or a smaller architecture.") from error
        finally:
            self.network.train(was_training)

    # --------------------------------------------------------------- behaviour
    def init_target(self) -> nn.Module:
        """The whole network from scratch; only the new head on top of loaded weights."""
        return self.network if self.weights is None else self.network.get_submodule(self.head_name)

    def initialize_weights(self) -> None:
        # With the architecture's own activations, the ReLU gain is the closest fit for all
        # of them (ReLU, ReLU6, SiLU, GELU, Hardswish behave like ReLU for x > 0).
        apply_init(self.init_target(), self.hparams.init, activation=self.hparams.activation or "relu",
                   scale=self.hparams.init_scale, negative_slope=self.hparams.negative_slope)

    def train(self, mode: bool = True) -> "TorchvisionNet":
        """Switch modes, keeping a frozen backbone's BatchNorm in eval mode."""
        super().train(mode)
        self._freeze_norms()
        return self

    def _freeze_norms(self) -> None:
        """Put the backbone's BatchNorm layers in eval mode when the backbone is frozen, so
        their running statistics do not move either."""
        if not getattr(self, "freeze_backbone", False) or not hasattr(self, "network"):
            return
        head_modules = set(self.network.get_submodule(self.head_name).modules())
        for module in self.network.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module not in head_modules:
                module.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # (N, H, W) grey images
            x = x.unsqueeze(1)
        outputs = self.network(x)
        return outputs if isinstance(outputs, torch.Tensor) else outputs[0]  # Inception/GoogLeNet tuples


# ----------------------------------------------------------------- helpers
def _is_path(weights: str) -> bool:
    return weights.endswith((".pth", ".pt", ".ckpt")) or "/" in weights or Path(weights).is_file()


def _find_head(network: nn.Module, arch: str) -> str:
    """Qualified name of the layer producing the 1000 ImageNet logits (the last such layer)."""
    heads = [name for name, module in network.named_modules()
             if (isinstance(module, nn.Linear) and module.out_features == 1000)
             or (isinstance(module, nn.Conv2d) and module.out_channels == 1000)]
    if not heads:
        raise UserError(f"Cannot find the classification layer of {arch} to replace; "
                        f"choose another architecture.")
    return heads[-1]


def _adapt_first_conv(network: nn.Module, channels: int, keep_weights: bool) -> None:
    """Rebuild the first 3-channel convolution for ``channels`` input channels."""
    name = next((n for n, m in network.named_modules()
                 if isinstance(m, nn.Conv2d) and m.in_channels == 3), None)
    if name is None:
        raise UserError(f"Cannot adapt this architecture to {channels}-channel inputs "
                        f"(no RGB convolution found).")
    parent_name, _, child = name.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    old: nn.Conv2d = getattr(parent, child)
    new = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                    old.groups, old.bias is not None, old.padding_mode)
    if keep_weights:
        with torch.no_grad():
            new.weight.copy_(old.weight.mean(1, keepdim=True).repeat(1, channels, 1, 1) * (3 / channels))
            if old.bias is not None:
                new.bias.copy_(old.bias)
    setattr(parent, child, new)
    if hasattr(network, "transform_input"):  # Inception's RGB re-normalization needs 3 channels
        network.transform_input = False


def _load_local(network: nn.Module, path: Path, head_name: str) -> None:
    """Load a state dict file (plain, ``{"state_dict": ...}`` or a netscope checkpoint);
    a head of another size is left out, any other difference is an error."""
    if not path.is_file():
        raise UserError(f"The weights file '{path}' does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickles of whole models, damaged files, ...
        raise UserError(f"Cannot read '{path}' as a state dict ({str(error).splitlines()[0]}). "
                        f"Save weights with torch.save(model.state_dict(), path).") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict", state.get("model")), dict):
        state = state.get("state_dict", state.get("model"))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"'{path}' does not hold a state dict (a mapping of parameter names to tensors).")
    for prefix in ("module.", "network."):  # DataParallel and netscope checkpoints
        if state and all(key.startswith(prefix) for key in state):
            state = {key.removeprefix(prefix): value for key, value in state.items()}
    own = network.state_dict()
    state = {k: v for k, v in state.items()
             if not (k.startswith(head_name + ".") and k in own and own[k].shape != v.shape)}
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.startswith(head_name + ".")]
    unexpected = [k for k in state if k not in own]
    if mismatched or missing or unexpected:
        raise UserError(f"'{path}' does not fit {type(network).__name__}: "
                        f"missing {missing[:5]}, unexpected {unexpected[:5]}, other shapes {mismatched[:5]}.")
    network.load_state_dict(state, strict=False)
