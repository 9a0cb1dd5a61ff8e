"""Hostile requests at the serving gate, over a real socket: the key before the body, the
pixel cap before decoding, malformed multipart and wrong-typed JSON as 4xx, decodes at once
bounded (503 + Retry-After).

The gate runs as it does in ``serve`` (a middleware of a Starlette app, under uvicorn) in a
thread of the test, in front of a small app that answers with the shape of what the gate
decoded; the whole server (LitServe, the model) is tested in ``test_deploy.py``.
"""

import asyncio
import base64
import io
import json
import socket
import struct
import threading
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from netscope.deploy.decode import BadInput, from_wire, parse_json
from netscope.deploy.gate import DecodeSlots, InputGate
from netscope.deploy.spec import InputSpec

KEY = "s3cret-key"
IMAGE = InputSpec("image", (3, 16, 16), (0.5,) * 3, (0.25,) * 3, ("a", "b"), "classification")
VECTOR = InputSpec("vector", (2,), (), (), ("0", "1"), "binary")
MAX_PIXELS = 64 * 64


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but holds almost no pixel data: any decode
    of it fails (truncated), so a 413 for it shows the size was refused before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def multipart(data: bytes, boundary: str = "XyZ", field: str = "file") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def request(body: bytes | None, content_type: str | None = "multipart/form-data; boundary=XyZ",
            path: str = "/predict", method: str = "POST", key: str | None = KEY,
            extra: str = "", length: int | None = None) -> bytes:
    """Raw HTTP/1.1 bytes; ``length`` declares a Content-Length other than the body's."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if key:
        lines.append(f"X-API-Key: {key}")
    if body is not None or length is not None:
        lines.append(f"Content-Length: {len(body or b'') if length is None else length}")
    head = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return head.encode() + (body or b"")


def exchange(port: int, raw: bytes, timeout: float = 20.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; the response's status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without answering: {data!r}"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


class GateServer:
    """A Starlette app behind :class:`InputGate`, served by uvicorn on a free loopback port."""

    def __init__(self, spec: InputSpec, **gate: object) -> None:
        async def predict(request):
            wire = await request.json()
            array = from_wire(wire)
            return JSONResponse({"shape": list(array.shape), "dtype": str(array.dtype),
                                 "mean": float(array.astype(np.float64).mean())})

        async def health(request):
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health),
                                Route("/info", health)],
                        middleware=[Middleware(InputGate, path="/predict", spec=spec, **gate)])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            self.thread.join(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def serving(spec: InputSpec, **gate: object) -> Iterator[int]:
    server = GateServer(spec, **gate)
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def image_port() -> Iterator[int]:
    yield from serving(IMAGE, max_bytes=2**20, max_pixels=MAX_PIXELS, decode_slots=2, api_key=KEY)


@pytest.fixture(scope="module")
def vector_port() -> Iterator[int]:
    yield from serving(VECTOR, max_bytes=2**20, api_key=None)


def test_health_needs_no_key_and_everything_else_does(image_port):
    status, _, body = exchange(image_port, request(None, None, path="/health", method="GET", key=None))
    assert (status, body) == (200, b"ok")
    for path, method in (("/info", "GET"), ("/", "GET"), ("/predict", "POST")):
        status, headers, body = exchange(image_port, request(b"{}", "application/json", path=path,
                                                             method=method, key=None))
        assert status == 401, (path, status, body)
        assert "X-API-Key" in json.loads(body)["detail"] and headers["www-authenticate"] == "Bearer"
    assert exchange(image_port, request(multipart(png(8, 8)), key="wrong"))[0] == 401
    bearer = request(multipart(png(8, 8)), key=None, extra=f"Authorization: Bearer {KEY}\r\n")
    assert exchange(image_port, bearer)[0] == 200
    assert exchange(image_port, request(multipart(png(8, 8))))[0] == 200


def test_key_is_checked_before_the_body_is_read(image_port):
    """Headers that announce a body which never comes: the answer must not wait for it."""
    status, headers, _ = exchange(image_port, request(None, key=None, length=500_000), timeout=10)
    assert status == 401 and headers["connection"] == "close"
    # The same holds for a refused content type and a declared size over the limit.
    status, headers, _ = exchange(image_port, request(None, "text/plain", length=500_000), timeout=10)
    assert status == 415 and headers["connection"] == "close"
    status, _, body = exchange(image_port, request(None, length=5 * 2**20), timeout=10)
    assert status == 413 and "--max_request_mb" in json.loads(body)["detail"]


def test_an_image_over_the_pixel_cap_is_refused_before_decoding(image_port):
    good = exchange(image_port, request(multipart(png(40, 30))))
    assert good[0] == 200 and json.loads(good[2])["shape"] == [3, 16, 16]
    # 9000 x 9000 declared in 69 bytes: a decode would fail ("truncated", 400); 413 means
    # the size was refused from the header.
    for body, content_type in ((multipart(png_header(9000, 9000)), None),
                               (json.dumps({"image": base64.b64encode(png_header(9000, 9000)).decode()}).encode(),
                                "application/json")):
        status, _, answer = exchange(image_port, request(body, content_type or "multipart/form-data; boundary=XyZ"))
        detail = json.loads(answer)["detail"]
        assert status == 413 and "9000x9000" in detail and "--max_pixels" in detail, detail
    assert exchange(image_port, request(multipart(png(65, 64))))[0] == 413  # just over 64 x 64
    # At the cap exactly: decoded (and found truncated).
    assert exchange(image_port, request(multipart(png_header(64, 64))))[0] == 400


MALFORMED_MULTIPART = {
    "no boundary": (multipart(b"abc"), "multipart/form-data"),
    "another boundary": (multipart(png(8, 8), boundary="other"), None),
    "empty boundary": (multipart(png(8, 8)), "multipart/form-data; boundary="),
    "no closing boundary": (multipart(png(8, 8))[:-8], None),
    "garbage after the boundary": (b"--XyZ\r\n\x00\x01\x02 not headers\r\n\r\n", None),
    "header without a colon": (b"--XyZ\r\nContent-Disposition form-data\r\n\r\nabc\r\n--XyZ--\r\n", None),
    "no file field": (b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--XyZ--\r\n", None),
    "boundary only": (b"--XyZ--\r\n", None),
    "file is not an image": (multipart(b"plain text, not pixels"), None),
}


@pytest.mark.parametrize("name", MALFORMED_MULTIPART)
def test_malformed_multipart_is_a_4xx(image_port, name):
    body, content_type = MALFORMED_MULTIPART[name]
    status, _, answer = exchange(image_port, request(body, content_type or "multipart/form-data; boundary=XyZ"))
    assert 400 <= status < 500, (name, status, answer)
    detail = json.loads(answer)["detail"]
    assert detail and "\n" not in detail
    assert exchange(image_port, request(multipart(png(8, 8))))[0] == 200  # and the server goes on


WRONG_JSON = {
    "array": b"[1, 2]", "string": b'"image"', "null": b"null", "number": b"5",
    "image is a number": b'{"image": 5}', "image is null": b'{"image": null}',
    "image is a list": b'{"image": ["aGk="]}', "image is an object": b'{"image": {"data": "aGk="}}',
    "image not ascii": '{"image": "\u00fc\u00fc\u00fc\u00fc"}'.encode(),
    "image is not base64": b'{"image": "not base64!"}',
    "image is base64 of text": json.dumps({"image": base64.b64encode(b"hello").decode()}).encode(),
    "not utf-8": b'{"image": "\xff\xfe"}',
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "a 5000-digit number": b'{"image": ' + b"7" * 5000 + b"}",
    "truncated": b'{"image": "aGk=',
}


@pytest.mark.parametrize("name", WRONG_JSON)
def test_json_of_the_wrong_type_is_a_400(image_port, name):
    status, _, answer = exchange(image_port, request(WRONG_JSON[name], "application/json"))
    assert status == 400, (name, status, answer)
    assert "\n" not in json.loads(answer)["detail"]


WRONG_VECTORS = {
    "strings": [["1", "2"]], "booleans": [[True, False]], "nulls": [[None, 1]], "object": [{"a": 1}],
    "ragged": [[1, [2, 3]]], "huge integer": [[10**30, 1]], "nested": [[[1, 2]]], "wrong length": [[1, 2, 3]],
    "infinite": [[1e400, 1]], "missing": None,
}


@pytest.mark.parametrize("name", WRONG_VECTORS)
def test_vector_inputs_of_the_wrong_type_are_a_400(vector_port, name):
    values = WRONG_VECTORS[name]
    body = json.dumps({} if values is None else {"inputs": values[0]}).encode()
    status, _, answer = exchange(vector_port, request(body, "application/json", key=None))
    assert status == 400, (name, status, answer)
    assert '"inputs"' in json.loads(answer)["detail"]
    status, _, answer = exchange(vector_port, request(b'{"inputs": [0.5, 1]}', "application/json", key=None))
    assert status == 200 and json.loads(answer) == {"shape": [2], "dtype": "float32", "mean": 0.75}


def test_mangled_requests_never_get_a_5xx(image_port):
    """A valid upload cut short or with bytes overwritten, at seeded random places."""
    valid = multipart(png(20, 20))
    rng = np.random.default_rng(0)
    statuses = set()
    for trial in range(40):
        body = bytearray(valid)
        if trial % 2:
            body = body[: rng.integers(1, len(body))]
        else:
            for where in rng.integers(0, len(body), 4):
                body[where] = int(rng.integers(0, 256))
        status, _, answer = exchange(image_port, request(bytes(body)))
        assert status < 500, (trial, status, answer)
        statuses.add(status)
    assert statuses - {200}  # some of them were refused (the test did mangle them)


def test_decodes_wait_for_a_slot_and_are_told_to_retry_when_none_frees():
    """No slot (size 0) ever frees: a body gets 503 with Retry-After after the wait, while
    the checks made before a body is read (key, type, declared size) need no slot."""
    for port in serving(IMAGE, max_bytes=2**20, max_pixels=MAX_PIXELS, decode_slots=0, decode_wait_s=0.2,
                        api_key=KEY):
        status, headers, answer = exchange(port, request(multipart(png(8, 8))))
        assert status == 503 and headers["retry-after"] == "1", answer
        assert "retry" in json.loads(answer)["detail"]
        assert exchange(port, request(multipart(png(8, 8)), key=None))[0] == 401
        assert exchange(port, request(b"x", "image/png"))[0] == 415
        assert exchange(port, request(None, length=2 * 2**20))[0] == 413


def test_decode_slots_bound_the_decodes_at_once():
    slots = DecodeSlots(2, wait_s=10)
    running, most = 0, 0

    async def decode() -> None:
        nonlocal running, most
        async with slots.slot():
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

    async def many() -> None:
        await asyncio.gather(*(decode() for _ in range(7)))

    asyncio.run(many())
    assert most == 2 and running == 0


def test_parse_json_gives_the_image_bytes_or_the_vector():
    assert parse_json(json.dumps({"image": base64.b64encode(b"abc").decode()}).encode(), IMAGE) == b"abc"
    assert parse_json(b'{"inputs": [1, 2.5]}', VECTOR).tolist() == [1.0, 2.5]
    with pytest.raises(BadInput, match='"inputs" must be'):
        parse_json(b'{"inputs": ["1", "2"]}', VECTOR)  # numpy alone would take the strings


def test_every_serve_option_reaches_the_command():
    """Each argument of NetscopeTrainer.serve is a --option; the lifecycle hands on a fixed
    list of them, and one left off it is silently ignored (a --api_key_env dropped so would
    serve without the key)."""
    import inspect

    from netscope.assembly import METHOD_OPTIONS
    from netscope.trainer import NetscopeTrainer

    for command in ("serve", "export"):
        arguments = set(inspect.signature(getattr(NetscopeTrainer, command)).parameters)
        assert arguments - {"self", "model", "datamodule"} == set(METHOD_OPTIONS[command]), command
