"""Tiny generated image folders for the image-folder, torchvision and predict tests."""

from pathlib import Path

import numpy as np
from PIL import Image

#: A colour per class, so that a model can tell the classes apart in a few steps.
COLOURS = {"alpha": (220, 40, 40), "beta": (40, 200, 60), "gamma": (50, 60, 210)}


def save(path: Path, rgb: tuple[int, int, int], size: tuple[int, int], mode: str, seed: int) -> None:
    """An image of ``size`` around colour ``rgb`` with some noise, saved in ``mode``."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb) + rng.integers(-30, 31, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    match mode:
        case "RGBA":
            image = image.convert("RGBA")
        case "CMYK":
            image = image.convert("CMYK")
        case "L":
            image = image.convert("L")
        case "P":
            image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


#: (file suffix, mode, size): every class gets these, cycling.
VARIANTS = [(".jpg", "RGB", (20, 20)), (".png", "RGBA", (12, 16)), (".jpg", "CMYK", (24, 24)),
            (".png", "L", (16, 16)), (".png", "P", (18, 10)), (".bmp", "RGB", (8, 8))]


def make_class_folder(root: Path, per_class: int = 8, corrupt: bool = True) -> Path:
    """``root/<class>/*``: 3 classes in mixed sizes and modes, plus one corrupt jpg in
    ``alpha`` and a stray text file (not an image) in ``beta``."""
    for c, (name, rgb) in enumerate(COLOURS.items()):
        for i in range(per_class):
            suffix, mode, size = VARIANTS[i % len(VARIANTS)]
            save(root / name / f"{i:03d}{suffix}", rgb, size, mode, seed=100 * c + i)
    if corrupt:
        (root / "alpha" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / "beta" / "notes.txt").write_text("not an image")
    return root


def make_predict_folder(root: Path) -> Path:
    """New images to classify: one per class (one in a sub-folder), a broken one, a text file."""
    for i, (name, rgb) in enumerate(COLOURS.items()):
        save(root / ("batch2" if i == 2 else "") / f"new_{name}.png", rgb, (30, 30), "RGB", seed=900 + i)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "readme.txt").write_text("not an image")
    return root
