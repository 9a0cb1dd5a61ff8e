"""Decode folders of image files into uint8 tensors once, and cache the result.

Decoding thousands of JPEGs takes seconds to minutes; every later run loads one tensor
file instead. The cache lives outside the data folder (which may be read-only), and its
name carries a fingerprint of the file list (paths, sizes, modification times), of the
image size and of the decoding code's version, so any change to the files makes a new
cache (and the stale one of the same folder and size is removed).

Any mode PIL reads (RGB, RGBA, CMYK, greyscale, palette, 16-bit) becomes 3-channel RGB.
A file that cannot be read (corrupt, over the pixel cap, or one of the hostile entries
:mod:`datamodules.image_files` passes over) is skipped with a warning naming it, or
rejected in strict mode.
"""

import hashlib
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from netscope.core.errors import UserError
from netscope.core.files import replace_atomically
from netscope.datamodules.image_files import (  # noqa: F401 (IMAGE_EXTENSIONS, list_images: re-exported)
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageTooLarge,
    check_pixels,
    list_classes,
    list_images,
    scan_images,
)

#: Bump when decoding changes what the cached pixels are (conversion, resizing, skipping).
CACHE_FORMAT = 3

#: Skipped files named one warning each, up to this many per folder (then one line for the rest).
WARN_EACH = 10


@dataclass
class DecodedImages:
    """Images of one folder: ``images`` (N, 3, H, W) uint8, ``labels`` (N,) int64 (-1 when
    unlabelled), ``files`` relative to the folder, ``skipped`` maps unreadable files (paths
    as given) to the reason."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    files: list[str]
    skipped: dict[str, str] = field(default_factory=dict)


def default_cache_dir() -> Path:
    """``$NETSCOPE_CACHE_DIR``, else ``~/.cache/netscope``."""
    return Path(os.environ.get("NETSCOPE_CACHE_DIR") or Path.home() / ".cache" / "netscope")


def scan_class_folder(
    root: str | Path, classes: list[str] | None = None
) -> tuple[list[str], list[Path], list[int], dict[str, str]]:
    """Class names, image files, their labels and the entries skipped (path: reason) under
    ``root/<class>/``, without decoding.

    Raises:
        UserError: ``root`` is missing, has no class folders, or a class folder has no images.
    """
    root = Path(root)
    classes = classes or list_classes(root)
    files: list[Path] = []
    labels: list[int] = []
    skipped: dict[str, str] = {}
    for label, name in enumerate(classes):
        folder = root / name
        listing = scan_images(folder) if folder.is_dir() else None
        if listing is None or not listing.files:
            skipped_here = list(listing.skipped.items())[:3] if listing else []
            unusable = "; ".join(f"{path} ({why})" for path, why in skipped_here)
            raise UserError(f"The class folder '{folder}' has no images ({', '.join(IMAGE_EXTENSIONS)})"
                            + (f" that can be read: {unusable}" if unusable else "")
                            + ". Add images to it or remove the folder.")
        files += listing.files
        labels += [label] * len(listing.files)
        skipped |= listing.skipped
    return classes, files, labels, skipped


@contextmanager
def open_image(source: str | Path | BinaryIO, image_size: int | None,
               max_pixels: int | None = MAX_PIXELS) -> Iterator[Image.Image]:
    """``source`` opened (its header read, nothing decoded), JPEG draft scaling set for
    ``image_size``, and refused (:class:`image_files.ImageTooLarge`) when the pixels it
    would decode are over ``max_pixels``."""
    with Image.open(source) as image:
        if image_size is not None:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly (never below the size asked
            # for): several times faster than decoding in full and then shrinking.
            image.draft(image.mode, (image_size, image_size))
        check_pixels(image, max_pixels)
        yield image


def read_image(path: str | Path | BinaryIO, image_size: int | None,
               max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """One image as an (H, W, 3) uint8 array: any mode converted to RGB, resized if asked;
    over ``max_pixels`` (None: no cap but PIL's own) it is refused before decoding."""
    with open_image(path, image_size, max_pixels) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: keep the high byte
            image = Image.fromarray((np.asarray(image, dtype=np.int32) >> 8).clip(0, 255).astype(np.uint8))
        elif image.mode == "P":  # palette (possibly with transparency) via RGBA, as PIL advises
            image = image.convert("RGBA")
        image = image.convert("RGB")
        if image_size is not None and image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def decode_class_folder(
    root: str | Path,
    classes: list[str] | None = None,
    image_size: int | None = None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    max_pixels: int | None = MAX_PIXELS,
) -> DecodedImages:
    """Decode ``root/<class>/*`` into tensors, from the cache when it is up to date.

    Args:
        root: folder with one sub-folder per class.
        classes: class names in label order (default: the sorted sub-folder names).
        image_size: resize every image to this square size (needed when sizes differ).
        cache_dir: where cached tensors go (default :func:`default_cache_dir`).
        strict: raise on an unreadable image instead of skipping it with a warning.
        max_pixels: images over this many pixels are skipped before decoding.
    """
    root = Path(root)
    classes, files, labels, unlisted = scan_class_folder(root, classes)
    images, kept, skipped = decode_files(files, root, image_size, cache_dir, strict, max_pixels)
    skipped = unlisted | skipped
    report_skipped(root, skipped, strict)
    kept_labels = torch.tensor([labels[i] for i in kept], dtype=torch.long)
    present = set(kept_labels.tolist())
    unreadable = [name for label, name in enumerate(classes) if label not in present]
    if unreadable:
        raise UserError(f"No image of class {', '.join(unreadable)} in '{root}' could be read. "
                        f"Replace the unreadable files or remove the class folder.")
    return DecodedImages(images, kept_labels, classes,
                         [files[i].relative_to(root).as_posix() for i in kept], skipped)


def decode_folder(
    root: str | Path,
    image_size: int | None = None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    max_pixels: int | None = MAX_PIXELS,
) -> DecodedImages:
    """Decode every image under ``root`` (any depth, unlabelled), e.g. new images to predict."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"The folder '{root}' does not exist or is not a folder.")
    listing = scan_images(root, recursive=True)
    files = listing.files
    if not files and not listing.skipped:
        raise UserError(f"'{root}' holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    images, kept, skipped = decode_files(files, root, image_size, cache_dir, strict, max_pixels)
    skipped = listing.skipped | skipped
    report_skipped(root, skipped, strict)
    if not kept:
        raise UserError(f"None of the {len(skipped)} images in '{root}' could be read: "
                        + "; ".join(f"{path} ({reason})" for path, reason in list(skipped.items())[:5]))
    return DecodedImages(images, torch.full((len(kept),), -1, dtype=torch.long), [],
                         [files[i].relative_to(root).as_posix() for i in kept], skipped)


def decode_files(
    files: list[Path],
    root: Path,
    image_size: int | None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    max_pixels: int | None = MAX_PIXELS,
) -> tuple[torch.Tensor, list[int], dict[str, str]]:
    """Decode ``files`` (all under ``root``), from the cache when it is up to date.

    Returns:
        ``(images, kept, skipped)``: a uint8 (N, 3, H, W) tensor of the readable images,
        their indices in ``files``, and ``{path: reason}`` for the unreadable ones (the
        caller reports them: :func:`report_skipped`).

    Raises:
        UserError: the sizes differ while ``image_size`` is None.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha1(os.fsencode(root.resolve())).hexdigest()[:8]
    prefix = f"{root.name or 'images'}-{key}-{image_size or 'native'}px-"
    cache_file = cache_dir / "images" / f"{prefix}{_fingerprint(files, root, image_size, max_pixels)}.pt"
    cached = _load_cache(cache_file)
    if cached is not None:
        images, kept, skipped = cached["images"], cached["kept"], cached["skipped"]
    else:
        decoded = _decode_all(files, image_size, max_pixels)
        kept = [i for i, item in enumerate(decoded) if isinstance(item, np.ndarray)]
        skipped = {str(files[i]): item for i, item in enumerate(decoded) if isinstance(item, str)}
        shapes = {decoded[i].shape for i in kept}
        if len(shapes) > 1:
            raise UserError(f"Images in '{root}' have different sizes ({sorted(shapes)[:3]} ...). "
                            f"Set --data.init_args.image_size to resize them all to one size.")
        images = (torch.from_numpy(np.stack([decoded[i] for i in kept])).permute(0, 3, 1, 2).contiguous()
                  if kept else torch.empty(0, 3, image_size or 0, image_size or 0, dtype=torch.uint8))
        _save_cache({"images": images, "kept": kept, "skipped": skipped}, cache_file, prefix)
    return images, kept, skipped


def report_skipped(root: Path, skipped: dict[str, str], strict: bool) -> None:
    """One warning per skipped file (the first :data:`WARN_EACH`, then one for the rest),
    or, in strict mode, one error listing them."""
    if not skipped:
        return
    items = list(skipped.items())
    if strict:
        listing = "; ".join(f"{path} ({reason})" for path, reason in items[:WARN_EACH])
        more = f" and {len(items) - WARN_EACH} more" if len(items) > WARN_EACH else ""
        raise UserError(f"{len(items)} image(s) in '{root}' cannot be read: {listing}{more}. "
                        f"Remove or replace them, or set --data.init_args.strict false to skip them.")
    for path, reason in items[:WARN_EACH]:
        warnings.warn(f"Skipped the image '{path}': {reason}.", stacklevel=3)
    if len(items) > WARN_EACH:
        warnings.warn(f"Skipped {len(items) - WARN_EACH} more unreadable image(s) in '{root}', "
                      f"e.g. '{items[WARN_EACH][0]}' ({items[WARN_EACH][1]}).", stacklevel=3)


def _fingerprint(files: list[Path], root: Path, image_size: int | None, max_pixels: int | None) -> str:
    digest = hashlib.sha1(f"{CACHE_FORMAT}|{image_size}|{max_pixels}".encode())
    for path in files:
        try:
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:  # gone since it was listed: decoding will skip it and say why
            size = mtime = -1
        digest.update(os.fsencode(path.relative_to(root)) + f"|{size}|{mtime}\n".encode())
    return digest.hexdigest()[:16]


def _decode_all(files: list[Path], image_size: int | None, max_pixels: int | None) -> list[np.ndarray | str]:
    """Each file's pixels, or the reason it could not be read."""
    def decode(path: Path) -> np.ndarray | str:
        try:
            return read_image(path, image_size, max_pixels)
        except ImageTooLarge as error:
            return (f"{error.width}x{error.height} pixels, over the cap of {error.max_pixels} "
                    f"(--data.init_args.max_pixels; raise it to read such images)")
        except Exception as error:  # PIL raises many types for malformed files (OSError,
            # SyntaxError, ValueError, DecompressionBombError, ...): each means "unreadable".
            return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'unreadable'}"

    # PIL releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(decode, files, chunksize=64))


def _load_cache(cache_file: Path) -> dict | None:
    if not cache_file.exists():
        return None
    try:
        return torch.load(cache_file, weights_only=True)
    except Exception as error:  # a damaged cache file is rebuilt, never fatal
        warnings.warn(f"Ignoring the unreadable image cache '{cache_file}' ({error}).", stacklevel=3)
        return None


def _save_cache(content: dict, cache_file: Path, prefix: str) -> None:
    """Write atomically (a crash never leaves a half file) and drop stale caches of the folder."""
    try:
        replace_atomically(cache_file, lambda temporary: torch.save(content, temporary))
        for stale in cache_file.parent.glob(f"{prefix}*.pt"):
            if stale != cache_file:
                stale.unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(f"Could not write the image cache '{cache_file}' ({error}); "
                      f"images will be decoded again next time.", stacklevel=3)
