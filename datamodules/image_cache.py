"""Decode a folder of class sub-folders into uint8 tensors once, and cache the result.

Decoding thousands of JPEGs takes seconds to minutes; every later run loads one tensor
file instead. The cache lives outside the data folder (which may be read-only), and its
name carries a fingerprint of the file list (paths, sizes, modification times) and of the
image size, so any change to the files makes a new cache.
"""

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from netscope.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class DecodedImages:
    """Images of one folder: ``images`` (N, 3, H, W) uint8, ``labels`` (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    files: list[str]
    skipped: list[str]


def default_cache_dir() -> Path:
    """``$NETSCOPE_CACHE_DIR``, else ``~/.cache/netscope``."""
    return Path(os.environ.get("NETSCOPE_CACHE_DIR") or Path.home() / ".cache" / "netscope")


def list_classes(root: str | Path) -> list[str]:
    """Sorted names of the sub-folders of ``root`` (each is a class)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"The image folder '{root}' does not exist or is not a folder. "
                        f"Point --data.init_args.data_dir at a folder with one sub-folder per class.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"'{root}' has no class sub-folders. Expected {root}/<class>/<image files>.")
    return classes


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image(path: str | Path, image_size: int | None) -> np.ndarray:
    """One image as an (H, W, 3) uint8 array: any mode converted to RGB, resized if asked."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image_size is not None and image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _fingerprint(files: list[Path], root: Path, image_size: int | None, classes: list[str]) -> str:
    digest = hashlib.sha1(f"{image_size}|{classes}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def decode_class_folder(
    root: str | Path,
    classes: list[str] | None = None,
    image_size: int | None = None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
) -> DecodedImages:
    """Decode ``root/<class>/*`` into tensors, from the cache when it is up to date.

    Args:
        root: folder with one sub-folder per class.
        classes: class names in label order (default: the sorted sub-folder names).
        image_size: resize every image to this square size (needed when sizes differ).
        cache_dir: where cached tensors go (default :func:`default_cache_dir`).
        strict: raise on an unreadable image instead of skipping it with a warning.
    """
    root = Path(root)
    classes = classes or list_classes(root)
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        found = list_images(folder) if folder.is_dir() else []
        if not found:
            raise UserError(f"The class folder '{folder}' has no images ({', '.join(IMAGE_EXTENSIONS)}). "
                            f"Add images or remove the folder.")
        files += found
        labels += [label] * len(found)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    prefix = f"{root.name or 'images'}-{key}-"
    cache_file = cache_dir / f"{prefix}{_fingerprint(files, root, image_size, classes)}.pt"
    if cache_file.exists():
        return DecodedImages(**torch.load(cache_file, weights_only=False))

    decoded = _decode_all(files, image_size, strict)
    keep = [i for i, array in enumerate(decoded) if array is not None]
    skipped = [str(files[i]) for i, array in enumerate(decoded) if array is None]
    if skipped:
        warnings.warn(f"Skipped {len(skipped)} unreadable image(s) in '{root}': "
                      + ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""), stacklevel=2)
    shapes = {decoded[i].shape for i in keep}
    if len(shapes) > 1:
        raise UserError(f"Images in '{root}' have different sizes ({sorted(shapes)[:3]} ...). "
                        f"Set --data.init_args.image_size to resize them all to one size.")
    images = torch.from_numpy(np.stack([decoded[i] for i in keep])).permute(0, 3, 1, 2).contiguous()
    result = DecodedImages(
        images=images,
        labels=torch.tensor([labels[i] for i in keep], dtype=torch.long),
        classes=classes,
        files=[str(files[i].relative_to(root)) for i in keep],
        skipped=skipped,
    )
    _save_cache(result, cache_file, prefix)
    return result


def _decode_all(files: list[Path], image_size: int | None, strict: bool) -> list[np.ndarray | None]:
    def decode(path: Path) -> np.ndarray | None:
        try:
            return read_image(path, image_size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            if strict:
                raise UserError(f"Cannot read the image '{path}' ({error}). Remove or replace it, "
                                f"or set --data.init_args.strict false to skip unreadable images.") from error
            return None

    # PIL releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(decode, files, chunksize=64))


def _save_cache(result: DecodedImages, cache_file: Path, prefix: str) -> None:
    """Write atomically (a crash never leaves a half file) and drop stale caches of the folder."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
        torch.save(vars(result), temporary)
        os.replace(temporary, cache_file)
        for stale in cache_file.parent.glob(f"{prefix}*.pt"):
            if stale != cache_file:
                stale.unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(f"Could not write the image cache '{cache_file}' ({error}); "
                      f"images will be decoded again next time.", stacklevel=2)
