"""Request contents to model inputs; everything a client can get wrong is a :class:`BadInput`.

Images are decoded exactly as ``predict`` decodes a file (``datamodules.image_cache.read_image``:
any PIL mode to RGB, JPEG draft decoding, bilinear resize to the training size), so a served
answer equals the row ``predict`` writes for the same file. One-channel models get the image
in greyscale at their size.
"""

import base64
import binascii
import io
import json
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from netscope.datamodules.image_cache import read_image
from netscope.deploy.spec import InputSpec

USAGE = ('send an image as a multipart file field "file" (curl -F file=@image.jpg) or as JSON '
         '{"image": "<base64>"}')


class BadInput(Exception):
    """A request the server refuses: ``status`` (4xx) and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decode_image(data: bytes, spec: InputSpec) -> np.ndarray:
    """An encoded image file to uint8 ``spec.shape`` (channels first)."""
    if spec.kind != "image":
        raise BadInput(400, f'this model takes vectors, not images: send JSON {{"inputs": [...]}} '
                            f"of shape {list(spec.shape)}")
    if not data:
        raise BadInput(400, f"the image is empty: {USAGE}")
    channels, height, width = spec.shape if len(spec.shape) == 3 else (1, *spec.shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if channels == 3 and height == width:
                pixels = read_image(io.BytesIO(data), height)  # predict's own decoder
            else:
                pixels = _read_other(data, channels, height, width)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadInput(413, f"the image has too many pixels to decode safely ({_first_line(error)})") from error
    except UnidentifiedImageError as error:
        raise BadInput(400, f"the body is not an image PIL can read: {USAGE}") from error
    except (OSError, SyntaxError, ValueError) as error:  # PIL's ways of saying "truncated / corrupt"
        raise BadInput(400, f"the image is truncated or corrupt ({_first_line(error)})") from error
    array = pixels.reshape(height, width, -1).transpose(2, 0, 1)
    return np.ascontiguousarray(array).reshape(spec.shape)


def _read_other(data: bytes, channels: int, height: int, width: int) -> np.ndarray:
    """Greyscale or non-square inputs: PIL's conversion and bilinear resize, as read_image."""
    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def decode_json(body: bytes, spec: InputSpec) -> np.ndarray:
    """A JSON body: ``{"image": "<base64 file>"}``, or ``{"inputs": [...]}`` for vector models."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInput(400, f"the body is not valid JSON ({error.__class__.__name__}): {USAGE}") from error
    if not isinstance(payload, dict):
        raise BadInput(400, f"the JSON body must be an object: {USAGE}")
    if spec.kind == "vector":
        return _vector(payload.get("inputs"), spec)
    if not isinstance(payload.get("image"), str):
        raise BadInput(400, f'the JSON body has no "image" string: {USAGE}')
    try:
        data = base64.b64decode(payload["image"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadInput(400, '"image" is not valid base64') from error
    return decode_image(data, spec)


def _vector(values: object, spec: InputSpec) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise BadInput(400, f'"inputs" must be a list of numbers of shape {list(spec.shape)}') from error
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
