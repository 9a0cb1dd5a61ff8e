"""Decode folders of image files into uint8 tensors once, and cache the result.

Decoding thousands of JPEGs takes seconds to minutes; every later run loads one tensor
file instead. The cache lives outside the data folder (which may be read-only), and its
name carries a fingerprint of the file list (paths, sizes, modification times), of the
image size and of the decoding code's version, so any change to the files makes a new
cache (and the stale one of the same folder and size is removed).

Any mode PIL reads (RGB, RGBA, CMYK, greyscale, palette, 16-bit) becomes 3-channel RGB;
an unreadable file is skipped with a warning naming it, or rejected in strict mode.
"""

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from netscope.core.errors import UserError
from netscope.core.files import replace_atomically
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: Bump when decoding changes what the cached pixels are (conversion, resizing).
CACHE_FORMAT = 2


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


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files (by extension) inside ``folder``, sorted; hidden files are ignored."""
    folder = Path(folder)
    if recursive:
        candidates = [p for p in folder.rglob("*") if p.is_file()]
    else:  # scandir knows file types without a stat per file
        with os.scandir(folder) as entries:
            candidates = [Path(entry.path) for entry in entries if entry.is_file()]
    return sorted(p for p in candidates
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def scan_class_folder(
    root: str | Path, classes: list[str] | None = None
) -> tuple[list[str], list[Path], list[int]]:
    """Class names, image files and their labels under ``root/<class>/``, without decoding.

    Raises:
        UserError: ``root`` is missing, has no class folders, or a class folder has no images.
    """
    root = Path(root)
    classes = classes or list_classes(root)
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        found = list_images(folder) if folder.is_dir() else []
        if not found:
            raise UserError(f"The class folder '{folder}' has no images ({', '.join(IMAGE_EXTENSIONS)}). "
                            f"Add images to it or remove the folder.")
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def read_image(path: str | Path, image_size: int | None) -> np.ndarray:
    """One image as an (H, W, 3) uint8 array: any mode converted to RGB, resized if asked."""
    with Image.open(path) as image:
        if image_size is not None:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly (never below the size asked
            # for): several times faster than decoding in full and then shrinking.
            image.draft(image.mode, (image_size, image_size))
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
    classes, files, labels = scan_class_folder(root, classes)
    images, kept, skipped = decode_files(files, root, image_size, cache_dir, strict)
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
) -> DecodedImages:
    """Decode every image under ``root`` (any depth, unlabelled), e.g. new images to predict."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"The folder '{root}' does not exist or is not a folder.")
    files = list_images(root, recursive=True)
    if not files:
        raise UserError(f"'{root}' holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    images, kept, skipped = decode_files(files, root, image_size, cache_dir, strict)
    if not kept:
        raise UserError(f"None of the {len(files)} images in '{root}' could be read: "
                        + "; ".join(f"{path} ({reason})" for path, reason in list(skipped.items())[:5]))
    return DecodedImages(images, torch.full((len(kept),), -1, dtype=torch.long), [],
                         [files[i].relative_to(root).as_posix() for i in kept], skipped)


def decode_files(
    files: list[Path],
    root: Path,
    image_size: int | None,
    cache_dir: str | Path | None = None,
    strict: bool = False,
) -> tuple[torch.Tensor, list[int], dict[str, str]]:
    """Decode ``files`` (all under ``root``), from the cache when it is up to date.

    Returns:
        ``(images, kept, skipped)``: a uint8 (N, 3, H, W) tensor of the readable images,
        their indices in ``files``, and ``{path: reason}`` for the unreadable ones.

    Raises:
        UserError: ``strict`` and some file is unreadable, or the sizes differ while
            ``image_size`` is None.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    prefix = f"{root.name or 'images'}-{key}-{image_size or 'native'}px-"
    cache_file = cache_dir / "images" / f"{prefix}{_fingerprint(files, root, image_size)}.pt"
    cached = _load_cache(cache_file)
    if cached is not None:
        images, kept, skipped = cached["images"], cached["kept"], cached["skipped"]
    else:
        decoded = _decode_all(files, image_size)
        kept = [i for i, item in enumerate(decoded) if isinstance(item, np.ndarray)]
        skipped = {str(files[i]): item for i, item in enumerate(decoded) if isinstance(item, str)}
        shapes = {decoded[i].shape for i in kept}
        if len(shapes) > 1:
            raise UserError(f"Images in '{root}' have different sizes ({sorted(shapes)[:3]} ...). "
                            f"Set --data.init_args.image_size to resize them all to one size.")
        images = (torch.from_numpy(np.stack([decoded[i] for i in kept])).permute(0, 3, 1, 2).contiguous()
                  if kept else torch.empty(0, 3, image_size or 0, image_size or 0, dtype=torch.uint8))
        _save_cache({"images": images, "kept": kept, "skipped": skipped}, cache_file, prefix)
    _report_skipped(root, skipped, strict)
    return images, kept, skipped


def _report_skipped(root: Path, skipped: dict[str, str], strict: bool) -> None:
    if not skipped:
        return
    listing = "; ".join(f"{path} ({reason})" for path, reason in list(skipped.items())[:10])
    more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    if strict:
        raise UserError(f"{len(skipped)} image(s) in '{root}' cannot be read: {listing}{more}. "
                        f"Remove or replace them, or set --data.init_args.strict false to skip them.")
    warnings.warn(f"Skipped {len(skipped)} unreadable image(s) in '{root}': {listing}{more}",
                  stacklevel=3)


def _fingerprint(files: list[Path], root: Path, image_size: int | None) -> str:
    digest = hashlib.sha1(f"{CACHE_FORMAT}|{image_size}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _decode_all(files: list[Path], image_size: int | None) -> list[np.ndarray | str]:
    """Each file's pixels, or the reason it could not be read."""
    def decode(path: Path) -> np.ndarray | str:
        try:
            return read_image(path, image_size)
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
