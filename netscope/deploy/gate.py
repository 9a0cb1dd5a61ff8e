"""The front door: an ASGI middleware that checks the key, then reads, checks and decodes
every ``POST /predict``.

Why here and not in ``LitAPI.decode_request``: LitServe runs ``decode_request`` inside the
inference worker, on a whole batch at once, and one exception there fails every request of
the batch (with a 500); a body it cannot parse as JSON or a form is a 500 too. Decoding at
the door answers each bad request alone with a 4xx and a one-line reason, and the batches
that reach the model hold only valid inputs. A valid request is handed on as JSON holding
the decoded input (:func:`netscope.deploy.decode.to_wire`).

The order is the cheap checks first: the key and the headers (before a byte of the body is
read; such a refusal closes the connection, so the unread body is never waited for), the
body's size while it arrives; then, holding one of ``decode_slots`` slots
(:class:`DecodeSlots`), the form or JSON, the image's header (:func:`decode.probe_image`:
an image over the pixel cap is refused without being decoded) and the decode itself.

Why the slot covers all the work on a body, not only the decode: under a flood of requests
that are each cheap to refuse, work done at once by many threads contends for the one
interpreter lock, and a good request waits behind all of it (measured in docs/deploy.md,
"Load and faults"). Reading the body stays outside the slot, so that a slow client holds none.
The header is read on the event loop, without a thread (see :meth:`InputGate.read`).
"""

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse

from netscope.deploy.decode import USAGE, BadInput, decode_image, parse_json, probe_image, to_wire
from netscope.deploy.spec import InputSpec

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

#: How long a request waits for a decode slot before it is told to come back (503).
DECODE_WAIT_S = 5.0
#: The ``Retry-After`` of that 503, in seconds.
RETRY_AFTER_S = 1


class DecodeSlots:
    """At most ``size`` requests decoded at once (each can take the memory of a full-size
    image); one that finds no slot within ``wait_s`` seconds gets 503 with ``Retry-After``."""

    def __init__(self, size: int, wait_s: float = DECODE_WAIT_S) -> None:
        self.size = size
        self.wait_s = wait_s
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            # asyncio.timeout cancels the acquire itself, which gives a slot it was just
            # granted back: none is lost when the time runs out at the same moment.
            async with asyncio.timeout(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise BadInput(503, f"the server is decoding {self.size} image(s) already and none "
                                f"finished within {self.wait_s:g} s; retry in {RETRY_AFTER_S} s",
                           {"Retry-After": str(RETRY_AFTER_S)}) from None
        try:
            yield
        finally:
            self._free.release()


class InputGate:
    """Rejects unauthorized requests (401) and bad ``POST`` bodies on ``path`` with a 4xx
    ``{"detail": reason}``.

    Args:
        app: the ASGI app behind it (LitServe's).
        path: the prediction endpoint.
        spec: the input the model expects.
        max_bytes: the largest body accepted (413 beyond it, before reading it all).
        max_pixels: the largest image accepted, width x height (413 beyond it, before decoding).
        decode_slots: images decoded at once at most.
        decode_wait_s: how long a request waits for a decode slot before a 503.
        api_key: when set, every request but ``health_path`` must carry it, as
            ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.
        health_path: answered without a key (a load balancer's probe has none).
    """

    def __init__(self, app: Any, *, path: str, spec: InputSpec, max_bytes: int,
                 max_pixels: int | None = None, decode_slots: int = 1,
                 decode_wait_s: float = DECODE_WAIT_S, api_key: str | None = None,
                 health_path: str = "/health") -> None:
        self.app = app
        self.path = path
        self.spec = spec
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.slots = DecodeSlots(decode_slots, decode_wait_s)
        self.api_key = api_key.encode() if api_key else None
        self.health_path = health_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.api_key and scope["path"] != self.health_path and not self.authorized(headers):
            await refuse(BadInput(401, "a valid API key is needed: send it as the header "
                                       "X-API-Key: <key> (or Authorization: Bearer <key>)",
                                  {"WWW-Authenticate": "Bearer"}), scope, receive, send, close=True)
            return
        if scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            content_type = self.check_headers(headers)
            body = await self._body(receive)
        except BadInput as bad:  # the body is not (all) read: close rather than wait for it
            await refuse(bad, scope, receive, send, close=True)
            return
        try:
            wire = to_wire(await self.read(scope, content_type, body))
        except BadInput as bad:
            await refuse(bad, scope, receive, send)
            return
        await self.hand_on(scope, receive, send, json.dumps(wire).encode())

    def authorized(self, headers: Headers) -> bool:
        """Whether the request carries the key (compared in constant time)."""
        given = headers.get("x-api-key", "")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and not given:
            given = token.strip()
        return hmac.compare_digest(given.encode("latin-1"), self.api_key)

    def check_headers(self, headers: Headers) -> str:
        """The request's content type, once it and the declared length are acceptable."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "multipart/form-data"):
            raise BadInput(415, f"content type {content_type or '(none)'} is not accepted: {USAGE}")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise BadInput(413, f"the body is {int(declared) / 2**20:.1f} MB, over the "
                                f"{self.max_bytes / 2**20:g} MB limit (--max_request_mb)")
        return content_type

    async def read(self, scope: Scope, content_type: str, body: bytes) -> Any:
        """The decoded input of one request, or :class:`BadInput`."""
        if not body:
            raise BadInput(400, f"the body is empty: {USAGE}")
        async with self.slots.slot():
            if content_type == "application/json":
                parsed = await run_in_threadpool(parse_json, body, self.spec)
                if not isinstance(parsed, bytes):
                    return parsed  # a vector: nothing to decode
                data = parsed
            else:
                data = await self._form_file(scope, body)
            # The header is read here, not in a thread: it takes microseconds (at most one
            # pass over a body within --max_request_mb), while a hop to a thread and back
            # waits for the interpreter lock, up to 5 ms a time, behind a busy event loop.
            probe_image(data, self.spec, self.max_pixels)
            return await run_in_threadpool(decode_image, data, self.spec, self.max_pixels)

    async def _body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadInput(400, "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BadInput(413, f"the body is over the {self.max_bytes / 2**20:g} MB limit "
                                    f"(--max_request_mb)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _form_file(self, scope: Scope, body: bytes) -> bytes:
        """The bytes of the form's ``file`` field (or of its only file)."""
        async def once() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, once).form(max_part_size=self.max_bytes)
        except MultiPartException as error:  # outside an app (as in tests of the gate alone)
            raise BadInput(400, f"the multipart body cannot be parsed ({error.message})") from error
        except HTTPException as error:  # inside one, Starlette raises its parse errors as this
            raise BadInput(400, f"the multipart body cannot be parsed ({error.detail})") from error
        try:
            files = [value for value in form.values() if isinstance(value, UploadFile)]
            upload = form.get("file")
            upload = upload if isinstance(upload, UploadFile) else (files[0] if len(files) == 1 else None)
            if upload is None:
                raise BadInput(400, f'the form has no file field "file": {USAGE}')
            return await upload.read()
        finally:
            await form.close()

    async def hand_on(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        """Pass the request to LitServe with ``body`` (the decoded input) as its JSON body."""
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app({**scope, "headers": headers}, replay, send)


async def refuse(bad: BadInput, scope: Scope, receive: Receive, send: Send, close: bool = False) -> None:
    """Answer ``bad`` as JSON ``{"detail": reason}``; ``close`` ends the connection after it."""
    headers = dict(bad.headers)
    if close:
        headers["Connection"] = "close"
    await JSONResponse({"detail": bad.reason}, status_code=bad.status, headers=headers)(scope, receive, send)
