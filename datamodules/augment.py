"""Batched image augmentation on tensors (any device), applied after transfer.

torchvision's v2 transforms draw one random parameter per call, i.e. per batch when
given a batch; training needs a fresh draw per image, so these few are written batched.
"""

import torch
import torch.nn.functional as F


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(images), device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_translate(
    images: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to ``pad`` pixels in x and y (reflect padding, then crop)."""
    if pad <= 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (n,), device=images.device, generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), device=images.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None, :])  # (n, w)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # Gather (n, h, w) pixels for every channel at once.
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.preserve_format)


def random_cutout(
    images: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square at a random place in each image."""
    if size <= 0:
        return images
    n, _, h, w = images.shape
    cy = torch.randint(0, h, (n,), device=images.device, generator=generator)
    cx = torch.randint(0, w, (n,), device=images.device, generator=generator)
    ys = torch.arange(h, device=images.device)[None, :]
    xs = torch.arange(w, device=images.device)[None, :]
    in_y = (ys - cy[:, None]).abs() <= size // 2
    in_x = (xs - cx[:, None]).abs() <= size // 2
    mask = in_y[:, :, None] & in_x[:, None, :]
    return images.masked_fill(mask[:, None], 0.0)
