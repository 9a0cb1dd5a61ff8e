"""Request contents to model inputs; everything a client can get wrong is a :class:`BadInput`.

Images are decoded exactly as ``predict`` decodes a file (``datamodules.image_cache.read_image``:
any PIL mode to RGB, JPEG draft decoding, bilinear resize to the training size), so a served
answer equals the row ``predict`` writes for the same file. One-channel models get the image
in greyscale at their size.

Decoding has two steps: :func:`probe_image` reads only the header (is it an image, and is
its size within the pixel cap?) and costs next to nothing whatever the file declares;
:func:`decode_image` then decodes, which is what the gate bounds (``gate.DecodeSlots``).
"""

import base64
import binascii
import io
import json

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from netscope.datamodules.image_cache import open_image, read_image
from netscope.datamodules.image_files import ImageTooLarge
from netscope.deploy.spec import InputSpec

USAGE = ('send an image as a multipart file field "file" (curl -F file=@image.jpg) or as JSON '
         '{"image": "<base64>"}')


class BadInput(Exception):
    """A request the server refuses: ``status`` (4xx, or 503 when busy), a one-line
    ``reason`` and any ``headers`` for the response (``Retry-After``)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def _layout(spec: InputSpec) -> tuple[int, int, int]:
    channels, height, width = spec.shape if len(spec.shape) == 3 else (1, *spec.shape)
    return channels, height, width


def _uses_read_image(spec: InputSpec) -> bool:
    """Square RGB models get ``predict``'s own decoder (with JPEG draft scaling)."""
    channels, height, width = _layout(spec)
    return channels == 3 and height == width


def probe_image(data: bytes, spec: InputSpec, max_pixels: int | None) -> None:
    """Refuse, from its header alone, a body that is not an image (400) or whose size is
    over ``max_pixels`` (413); nothing is decoded."""
    if spec.kind != "image":
        raise BadInput(400, f'this model takes vectors, not images: send JSON {{"inputs": [...]}} '
                            f"of shape {list(spec.shape)}")
    if not data:
        raise BadInput(400, f"the image is empty: {USAGE}")
    draft = _layout(spec)[1] if _uses_read_image(spec) else None
    try:
        with open_image(io.BytesIO(data), draft, max_pixels):
            pass
    except Exception as error:
        raise refusal(error) from error


def decode_image(data: bytes, spec: InputSpec, max_pixels: int | None = None) -> np.ndarray:
    """An encoded image file to uint8 ``spec.shape`` (channels first)."""
    probe_image(data, spec, max_pixels)
    channels, height, width = _layout(spec)
    try:
        if _uses_read_image(spec):
            pixels = read_image(io.BytesIO(data), height, max_pixels)  # predict's own decoder
        else:
            pixels = _read_other(data, channels, height, width, max_pixels)
    except Exception as error:
        raise refusal(error) from error
    array = pixels.reshape(height, width, -1).transpose(2, 0, 1)
    return np.ascontiguousarray(array).reshape(spec.shape)


def refusal(error: Exception) -> BadInput:
    """What a client is told when PIL cannot open or decode its bytes."""
    match error:
        case BadInput():
            return error
        case ImageTooLarge():
            return BadInput(413, f"the image is {error.width}x{error.height} pixels "
                                 f"({error.width * error.height / 1e6:.1f} Mpx), over the server's cap of "
                                 f"{error.max_pixels / 1e6:.1f} Mpx (--max_pixels); send a smaller image")
        case Image.DecompressionBombError():
            return BadInput(413, f"the image has too many pixels to decode safely ({_first_line(error)})")
        case UnidentifiedImageError():
            return BadInput(400, f"the body is not an image PIL can read: {USAGE}")
    # PIL raises many types for malformed files (OSError, SyntaxError, ValueError, struct.error,
    # IndexError, ...): on a client's bytes, each of them means "a broken image".
    return BadInput(400, f"the image is truncated or corrupt ({type(error).__name__}: {_first_line(error)})")


def _read_other(data: bytes, channels: int, height: int, width: int, max_pixels: int | None) -> np.ndarray:
    """Greyscale or non-square inputs: PIL's conversion and bilinear resize, as read_image."""
    with open_image(io.BytesIO(data), None, max_pixels) as image:
        image = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def parse_json(body: bytes, spec: InputSpec) -> np.ndarray | bytes:
    """A JSON body: ``{"image": "<base64 file>"}`` gives the file's bytes (to be probed and
    decoded), ``{"inputs": [...]}`` the input vector of a vector model."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, a number of 5000
        # digits (int's digit limit), arrays nested thousands deep
        raise BadInput(400, f"the body is not valid JSON ({error.__class__.__name__}): {USAGE}") from error
    if not isinstance(payload, dict):
        raise BadInput(400, f"the JSON body must be an object: {USAGE}")
    if spec.kind == "vector":
        return _vector(payload.get("inputs"), spec)
    if not isinstance(payload.get("image"), str):
        raise BadInput(400, f'the JSON body has no "image" string: {USAGE}')
    try:
        return base64.b64decode(payload["image"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadInput(400, '"image" is not valid base64') from error


def decode_json(body: bytes, spec: InputSpec, max_pixels: int | None = None) -> np.ndarray:
    """:func:`parse_json`, with the image decoded."""
    parsed = parse_json(body, spec)
    return parsed if isinstance(parsed, np.ndarray) else decode_image(parsed, spec, max_pixels)


def _vector(values: object, spec: InputSpec) -> np.ndarray:
    """``values`` as float32 of the spec's shape: JSON numbers only (no strings, booleans,
    nulls or objects, which numpy would otherwise convert or wrap)."""
    wrong = BadInput(400, f'"inputs" must be a list of numbers of shape {list(spec.shape)}')
    try:
        array = np.asarray(values)
    except (TypeError, ValueError, OverflowError, RecursionError) as error:  # ragged lists, ...
        raise wrong from error
    if array.dtype.kind not in "iuf":  # str, bool, object (None, dicts, huge ints, mixtures)
        raise wrong
    array = array.astype(np.float32)
    if array.shape != spec.shape or not np.isfinite(array).all():
        raise BadInput(400, f'"inputs" must be finite numbers of shape {list(spec.shape)}, '
                            f"got shape {list(array.shape)}")
    return array


def to_wire(array: np.ndarray) -> dict:
    """A decoded input as JSON for the inference worker (raw bytes, base64)."""
    return {"array": base64.b64encode(array.tobytes()).decode(), "dtype": str(array.dtype),
            "shape": list(array.shape)}


def from_wire(payload: dict) -> np.ndarray:
    """The inverse of :func:`to_wire`."""
    raw = base64.b64decode(payload["array"])
    return np.frombuffer(raw, dtype=payload["dtype"]).reshape(payload["shape"])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
