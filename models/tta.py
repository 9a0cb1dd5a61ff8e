"""Test-time augmentation: average a model's outputs over mirrored and shifted views.

An image classifier trained with flips and small translations is nearly, not exactly,
invariant to them; averaging its logits over a few such views of each test image removes
part of its remaining error (airbench's ``tta_level`` 1 and 2). Few views, fixed and
cheap, so they are written here rather than pulled from a library.
"""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

TTAMode = Literal["none", "flip", "flip_translate"]


def _mirrored(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    return 0.5 * (forward(inputs) + forward(inputs.flip(-1)))


def tta_outputs(
    forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, mode: TTAMode
) -> torch.Tensor:
    """Outputs of ``forward`` averaged over views of ``inputs`` (``(..., H, W)`` images).

    Args:
        forward: the model's forward function.
        inputs: a batch of images, width last.
        mode: ``none`` (one view), ``flip`` (the image and its mirror, weighted equally) or
            ``flip_translate`` (half on those two, a quarter on each of the same pair shifted
            one pixel up-left and one pixel down-right with reflect padding: six views).
    """
    match mode:
        case "none":
            return forward(inputs)
        case "flip":
            return _mirrored(forward, inputs)
        case "flip_translate":
            h, w = inputs.shape[-2:]
            padded = F.pad(inputs, (1, 1, 1, 1), mode="reflect")
            shifted = [padded[..., :h, :w], padded[..., 2:, 2:]]
            return 0.5 * _mirrored(forward, inputs) + 0.25 * sum(
                _mirrored(forward, view) for view in shifted
            )
        case _:
            raise ValueError(f"unknown test-time augmentation {mode!r}")
