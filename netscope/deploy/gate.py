"""The front door: an ASGI middleware that reads, checks and decodes every ``POST /predict``.

Why here and not in ``LitAPI.decode_request``: LitServe runs ``decode_request`` inside the
inference worker, on a whole batch at once, and one exception there fails every request of
the batch (with a 500); a body it cannot parse as JSON or a form is a 500 too. Decoding at
the door answers each bad request alone with a 4xx and a one-line reason, and the batches
that reach the model hold only valid inputs. A valid request is handed on as JSON holding
the decoded input (:func:`netscope.deploy.decode.to_wire`).
"""

import json
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse

from netscope.deploy.decode import USAGE, BadInput, decode_image, decode_json, to_wire
from netscope.deploy.spec import InputSpec

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class InputGate:
    """Rejects bad ``POST`` bodies on ``path`` with a 4xx ``{"detail": reason}``.

    Args:
        app: the ASGI app behind it (LitServe's).
        path: the prediction endpoint.
        spec: the input the model expects.
        max_bytes: the largest body accepted (413 beyond it, before reading it all).
    """

    def __init__(self, app: Any, *, path: str, spec: InputSpec, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.spec = spec
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            wire = to_wire(await self.read(scope, receive))
        except BadInput as bad:
            await JSONResponse({"detail": bad.reason}, status_code=bad.status)(scope, receive, send)
            return
        body = json.dumps(wire).encode()
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

    async def read(self, scope: Scope, receive: Receive) -> Any:
        """The decoded input of one request, or :class:`BadInput`."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise BadInput(413, f"the body is {int(declared) / 2**20:.1f} MB, over the "
                                f"{self.max_bytes / 2**20:g} MB limit (--max_request_mb)")
        body = await self._body(receive)
        if not body:
            raise BadInput(400, f"the body is empty: {USAGE}")
        match content_type:
            case "application/json":
                return await run_in_threadpool(decode_json, body, self.spec)
            case "multipart/form-data":
                data = await self._form_file(scope, body)
                return await run_in_threadpool(decode_image, data, self.spec)
            case _:
                raise BadInput(415, f"content type {content_type or '(none)'} is not accepted: {USAGE}")

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
        except MultiPartException as error:
            raise BadInput(400, f"the multipart body cannot be parsed ({error.message})") from error
        files = [value for value in form.values() if isinstance(value, UploadFile)]
        upload = form.get("file") if isinstance(form.get("file"), UploadFile) else (files[0] if len(files) == 1 else None)
        if upload is None:
            raise BadInput(400, f'the form has no file field "file": {USAGE}')
        data = await upload.read()
        await form.close()
        return data
