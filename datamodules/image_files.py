"""Finding image files in a folder without tripping over what else a folder can hold, and
the pixel cap every decoder applies.

A folder that is not the user's own (a download, an archive, a shared drive) can hold a
symbolic link that points at itself, a name that is not UTF-8, a FIFO (opening one waits
forever), a folder named ``photo.jpg`` or a file nobody may read. Each entry whose name
looks like an image but that cannot be read as one is skipped, with its reason, and never
opened; the caller warns once per entry (:func:`datamodules.image_cache.report_skipped`).
Entries whose names do not look like images, and hidden ones, are passed over silently.

The pixel cap: a small file can declare a huge image (a single-colour 9000 x 9000 PNG is
99 KB and decodes to 243 MB of RGB). :func:`check_pixels` refuses it from its header,
before anything is decoded.
"""

import errno
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from netscope.core.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: The default cap on the pixels of one decoded image: 4096 x 4096 (16.8 Mpx, 50 MB of RGB),
#: many times any input size a model here trains on. JPEGs count at the scale they are
#: decoded at (PIL's draft mode reads a large JPEG at 1/2, 1/4 or 1/8 of its size).
MAX_PIXELS = 4096 * 4096


class ImageTooLarge(ValueError):
    """An image whose declared size is over the pixel cap; raised before decoding."""

    def __init__(self, width: int, height: int, max_pixels: int) -> None:
        super().__init__(f"{width}x{height} is {width * height / 1e6:.1f} Mpx, over the "
                         f"{max_pixels / 1e6:.1f} Mpx cap (max_pixels {max_pixels})")
        self.width, self.height, self.max_pixels = width, height, max_pixels


def check_pixels(image: Image.Image, max_pixels: int | None) -> None:
    """Refuse ``image`` (opened, not yet decoded) when its size is over ``max_pixels``."""
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(width, height, max_pixels)


def printable(path: str | os.PathLike) -> str:
    """``path`` as text that can always be printed and written to a UTF-8 file: bytes that
    are not UTF-8 appear as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(path: str | os.PathLike) -> bool:
    """Whether the name is valid UTF-8 (Python keeps other bytes as lone surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Listing:
    """Image files found (sorted) and ``{printable path: reason}`` for the ones skipped."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def scan_images(folder: str | Path, recursive: bool = False) -> Listing:
    """The image files (by extension) in ``folder`` (and below it, when ``recursive``).

    Symbolic links are followed (a linked folder is read once, however often it is
    linked); hidden files and folders are ignored.
    """
    listing = Listing()
    visited: set[tuple[int, int]] = set()
    pending = [Path(folder)]
    while pending:
        directory = pending.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in visited:
                continue
            visited.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as entries:
                found = sorted(entries, key=lambda entry: entry.name)
        except OSError as error:  # a sub-folder that cannot be listed
            listing.skipped[printable(directory)] = describe(error)
            continue
        for entry in found:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            reason = _why_not(entry, path, recursive)
            if reason == "folder":
                pending.append(path)
            elif reason:
                listing.skipped[printable(path)] = reason
            elif reason is not None:  # "": a readable image file
                listing.files.append(path)
    listing.files.sort()
    return listing


def _why_not(entry: os.DirEntry, path: Path, recursive: bool) -> str | None:
    """``""`` for a readable image file, ``"folder"`` for a folder to descend into, a reason
    for an entry that looks like an image but cannot be one, None for anything else."""
    looks_like_image = path.suffix.lower() in IMAGE_EXTENSIONS
    try:
        mode = os.stat(entry.path).st_mode  # follows links: a loop or a dangling one fails here
    except OSError as error:
        return describe(error) if looks_like_image else None
    if stat.S_ISDIR(mode):
        if recursive:
            return "folder"
        if not looks_like_image:
            return None
        return "a folder, not an image file (sub-folders of a class folder are not read)"
    if not looks_like_image:
        return None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"not a regular file ({kind})"
    if not is_utf8(path):
        return "the name is not valid UTF-8; rename the file"
    if not os.access(entry.path, os.R_OK):
        return "permission denied"
    return ""


def describe(error: OSError) -> str:
    """An ``OSError`` from listing or opening a file, in words."""
    match error.errno:
        case errno.ELOOP:
            return "a symbolic link that loops (it points, in the end, at itself)"
        case errno.ENOENT:
            return "a symbolic link to a file that does not exist"
        case errno.EACCES | errno.EPERM:
            return "permission denied"
    return error.strerror or type(error).__name__


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The readable image files of :func:`scan_images` (without the skipped ones)."""
    return scan_images(folder, recursive).files


def list_classes(root: str | Path) -> list[str]:
    """Sorted names of the sub-folders of ``root`` (each is a class). A folder whose name is
    not UTF-8 cannot be a class name (it goes into checkpoints and configs): it is skipped
    with a warning."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"The image folder '{root}' does not exist or is not a folder. "
                        f"Point --data.init_args.data_dir at a folder with one sub-folder per class.")
    classes = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if is_utf8(path.name):
            classes.append(path.name)
        else:
            warnings.warn(f"Skipped the folder '{printable(path)}': its name is not valid UTF-8, "
                          f"so it cannot name a class. Rename it to use its images.", stacklevel=2)
    if not classes:
        raise UserError(f"'{root}' has no class sub-folders. Expected {root}/<class>/<image files>.")
    return classes
