"""Batched image augmentation on float tensors (any device), applied after transfer.

torchvision's v2 transforms draw one random parameter per call, i.e. per batch when
given a batch; training needs a fresh draw per image, so these few are written batched.
"""

import torch
import torch.nn.functional as F


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(images), device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def alternating_flip(images: torch.Tensor, phase: torch.Tensor, epoch: int) -> torch.Tensor:
    """Mirror the images whose ``phase`` differs from the parity of ``epoch``.

    Every image is then seen mirrored on every other epoch, starting at random (``phase``
    is one fixed random bit per training image). Over two epochs each image is seen both
    ways, where independent coin flips would show a quarter of them the same way twice
    (airbench's "alternating flip", which makes short trainings more data-efficient).
    """
    flip = phase.to(device=images.device, dtype=torch.bool) ^ bool(epoch % 2)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_translate(
    images: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to ``pad`` pixels in x and y (reflect padding, then crop).

    One copy per distinct shift (``(2 pad + 1)^2`` masked copies) is several times faster
    than a per-pixel gather for the small shifts used in practice.
    """
    if pad <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    shifts = torch.randint(0, 2 * pad + 1, (2, n), device=images.device, generator=generator)
    out = torch.empty_like(images)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            chosen = (shifts[0] == dy) & (shifts[1] == dx)
            out[chosen] = padded[chosen, :, dy:dy + h, dx:dx + w]
    return out


def random_cutout(
    images: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square at a random place in each image (the square may
    be clipped by the border)."""
    if size <= 0:
        return images
    n, _, h, w = images.shape
    cy = torch.randint(0, h, (n,), device=images.device, generator=generator)
    cx = torch.randint(0, w, (n,), device=images.device, generator=generator)
    ys = torch.arange(h, device=images.device)[None, :]
    xs = torch.arange(w, device=images.device)[None, :]
    top, left = cy[:, None] - size // 2, cx[:, None] - size // 2
    in_y = (ys >= top) & (ys < top + size)
    in_x = (xs >= left) & (xs < left + size)
    mask = in_y[:, :, None] & in_x[:, None, :]
    return images.masked_fill(mask[:, None], 0.0)

