"""Outbound HTTP, to the destinations the run's policy allows.

A small blocking client over ``wasi:http/outgoing-handler``, like the Rust
SDK's ``stepbox_sdk::http``: :func:`get` or :func:`request`, then read the
whole :class:`Response`. The host refuses every destination the policy's
``outbound:`` allow-list does not name with :class:`~stepbox_sdk.Forbidden`
(its message names the list), holds each request to the run's size and time
limits (:class:`~stepbox_sdk.LimitExceeded`, :class:`~stepbox_sdk.Timeout`)
and audits it. Redirects are followed here (at most ``max_redirects``, 5 by
default), each hop a new request the host checks like the first::

    from stepbox_sdk import http, log, require_secret

    health = http.get("https://api.example.com/health")
    log.info(health.status, health.text())
    hook = http.request("POST", "https://hooks.example.com/deploys",
                        headers={"authorization": f"Bearer {require_secret('token')}"},
                        json={"done": True})

A step that imports this module is built for the world with ``wasi:http``
(``stepbox build`` sees the import); other Python steps do not import it.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union
from urllib.parse import urljoin, urlsplit

from .errors import Forbidden, Invalid, LimitExceeded, StepFailed, Timeout, Unavailable

try:
    from componentize_py_types import Err, Ok
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as _types
except ImportError:  # not built for the HTTP world, or outside a component
    outgoing_handler = None  # type: ignore[assignment]

__all__ = ["DEFAULT_MAX_REDIRECTS", "Response", "get", "request"]

#: Redirects followed by default.
DEFAULT_MAX_REDIRECTS = 5

_REDIRECTS = (301, 302, 303, 307, 308)
_READ_CHUNK = 64 * 1024


@dataclass
class Response:
    """A whole HTTP response."""

    #: The status code (3xx only when redirects were not followed).
    status: int
    #: The headers, names lowercase, in the order received.
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The whole body.
    body: bytes = b""
    #: The URL that answered (after redirects).
    url: str = ""

    def text(self) -> str:
        """The body as text (UTF-8, invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`~stepbox_sdk.Invalid` if it is not."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise Invalid(f"{self.url}: the body is not JSON: {e}") from None

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (any case), or None."""
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300


def get(url: str, *, headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> Response:
    """``GET url``, redirects followed."""
    return request("GET", url, headers=headers, timeout=timeout)


def request(
    method: str,
    url: str,
    *,
    headers: Optional[Mapping[str, str]] = None,
    body: Union[bytes, str, None] = None,
    json: Any = None,
    timeout: Optional[float] = None,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
) -> Response:
    """Sends one request (``body`` as bytes or text, or ``json`` encoded
    with ``content-type: application/json``), following at most
    ``max_redirects`` redirects; ``timeout`` (seconds) bounds connecting and
    each wait for data, within the run's ``limits.httpTimeout``."""
    if outgoing_handler is None:
        raise StepFailed(
            "stepbox_sdk.http needs the step built for wasi:http: import it in step.py "
            "(`from stepbox_sdk import http`) and build with `stepbox build`, which then adds it"
        )
    headers = dict(headers or {})
    if json is not None:
        body = _json.dumps(json, ensure_ascii=False)
        headers.setdefault("content-type", "application/json")
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    method = method.upper()
    redirects = 0
    while True:
        response = _send_once(method, url, headers, data, timeout)
        location = response.header("location")
        if response.status not in _REDIRECTS or location is None or redirects >= max_redirects:
            return response
        redirects += 1
        url = urljoin(url, location)
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, data = "GET", b""


def _send_once(method: str, url: str, headers: Mapping[str, str], data: bytes, timeout: Optional[float]) -> Response:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise Invalid(f"{url!r} is not an http:// or https:// URL (e.g. https://api.example.com/health)")
    fields = _types.Fields()
    try:
        for name, value in headers.items():
            fields.append(name.lower(), str(value).encode("utf-8"))
        if data:
            fields.set("content-length", [str(len(data)).encode()])
    except Err as e:
        raise Invalid(f"{url}: a header is not valid ({type(e.value).__name__})") from None
    req = _types.OutgoingRequest(fields)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        req.set_method(_method(method))
        req.set_scheme(_types.Scheme_Https() if parts.scheme.lower() == "https" else _types.Scheme_Http())
        req.set_authority(parts.netloc)
        req.set_path_with_query(path)
    except Err:
        raise Invalid(f"{url}: the method, host or path is not valid") from None
    outgoing = req.body()
    options = None
    if timeout is not None:
        nanos = max(0, int(timeout * 1e9))
        options = _types.RequestOptions()
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)
    try:
        pending = outgoing_handler.handle(req, options)
    except Err as e:
        raise _error(method, url, e.value) from None
    if data:
        stream = outgoing.write()
        try:
            for i in range(0, len(data), 4096):
                stream.blocking_write_and_flush(data[i : i + 4096])
        except Err:
            pass  # the host refused the body (its size limit): the response says why
        finally:
            stream.__exit__(None, None, None)
    try:
        _types.OutgoingBody.finish(outgoing, None)
    except Err:
        pass  # as above: the response says why
    pending.subscribe().block()
    result = pending.get()
    if not isinstance(result, Ok):
        raise StepFailed(f"{url}: the response was read twice")
    if isinstance(result.value, Err):
        raise _error(method, url, result.value.value)
    incoming_response = result.value.value
    status = incoming_response.status()
    response_headers = [(n, v.decode("utf-8", errors="replace")) for n, v in incoming_response.headers().entries()]
    incoming = incoming_response.consume()
    stream = incoming.stream()
    chunks = []
    try:
        while True:
            chunks.append(stream.blocking_read(_READ_CHUNK))
    except Err as e:
        if not isinstance(e.value, streams.StreamError_Closed):
            stream.__exit__(None, None, None)
            trailers = _types.IncomingBody.finish(incoming)
            trailers.subscribe().block()
            outcome = trailers.get()
            if isinstance(outcome, Ok) and isinstance(outcome.value, Err):
                raise _error(method, url, outcome.value.value) from None
            raise Unavailable(f"{url}: reading the response failed") from None
    return Response(status=status, headers=response_headers, body=b"".join(chunks), url=url)


def _method(method: str) -> Any:
    known = {
        "GET": _types.Method_Get,
        "HEAD": _types.Method_Head,
        "POST": _types.Method_Post,
        "PUT": _types.Method_Put,
        "DELETE": _types.Method_Delete,
        "PATCH": _types.Method_Patch,
        "OPTIONS": _types.Method_Options,
    }
    return known[method]() if method in known else _types.Method_Other(method)


def _error(method: str, url: str, code: Any) -> Exception:
    """The SDK error for a ``wasi:http`` error code: the host's own refusals
    carry their kind in the message (``forbidden: ...``)."""
    if isinstance(code, _types.ErrorCode_InternalError) and code.value:
        for prefix, cls in (
            ("forbidden: ", Forbidden),
            ("limit-exceeded: ", LimitExceeded),
            ("timeout: ", Timeout),
            ("unavailable: ", Unavailable),
            ("invalid: ", Invalid),
        ):
            if code.value.startswith(prefix):
                return cls(code.value[len(prefix) :])
    what = f"{method} {url}"
    if isinstance(code, (_types.ErrorCode_HttpResponseBodySize, _types.ErrorCode_HttpRequestBodySize)):
        return LimitExceeded(f"{what}: the body is larger than the run allows")
    if isinstance(
        code,
        (
            _types.ErrorCode_HttpResponseTimeout,
            _types.ErrorCode_ConnectionTimeout,
            _types.ErrorCode_ConnectionReadTimeout,
            _types.ErrorCode_ConnectionWriteTimeout,
        ),
    ):
        return Timeout(f"{what}: no complete answer in time ({type(code).__name__.removeprefix('ErrorCode_')})")
    return Unavailable(f"{what}: {type(code).__name__.removeprefix('ErrorCode_')}")
