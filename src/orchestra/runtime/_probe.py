"""Network probes (tcpSocket, httpGet, grpc) as the kubelet runs them, for runtimes whose pods
have a reachable IP (process, containerd).

Probes are network I/O, so their timeout (``timeoutSeconds``, default 1) is real time,
not the cluster clock. Messages are the kubelet's, so that events read as in Kubernetes:
``HTTP probe failed with statuscode: 500``,
``Get "http://127.1.0.2:8080/healthz": dial tcp 127.1.0.2:8080: connect: connection refused``,
``dial tcp 127.1.0.2:5432: connect: connection refused``,
``service unhealthy (responded with "NOT_SERVING")``.

HTTP goes through httpx (asynchronous: a probe never blocks the event loop), with the
kubelet's headers, redirect rule and 10 KiB body cap; the gRPC probe uses stubs generated
from ``runtime/_proto/health.proto`` (scripts/gen-protos).

``probe`` arguments are ``orchestra.objects.Probe`` models (snake_case attributes) or
plain Kubernetes dicts (camelCase keys); :func:`probe_field` reads either.
"""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from orchestra._errors import Timeout
from orchestra.runtime._protocol import ExecResult, ProbeOutcome

USER_AGENT = "kube-probe/1.31"
MAX_BODY = 10 * 1024  # the kubelet reads at most 10 KiB of an HTTP probe's answer
MAX_REDIRECTS = 10  # Go's http.Client stops after 10 redirects
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_CAMEL = {
    "http_get": "httpGet",
    "tcp_socket": "tcpSocket",
    "timeout_seconds": "timeoutSeconds",
    "http_headers": "httpHeaders",
}


def probe_field(obj: Any, name: str) -> Any:
    """``obj.name`` for a model, ``obj[camelName]`` for a dict, None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        camel = _CAMEL.get(name, name)
        return obj.get(camel, obj.get(name))
    return getattr(obj, name, None)


def probe_timeout(probe: Any) -> float:
    """``timeoutSeconds``, with Kubernetes' default of 1 second."""
    value = probe_field(probe, "timeout_seconds")
    return float(value) if value else 1.0


def exec_command(probe: Any) -> list[str] | None:
    """The exec probe's argv, or None if it is not an exec probe."""
    action = probe_field(probe, "exec")
    if action is None:
        return None
    return [str(a) for a in (probe_field(action, "command") or ())]


def _port(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    raise ValueError(f"unknown port name {text!r}: the node agent resolves port names")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dial_error(exc: BaseException) -> str:
    """Go's wording for a failed connect (``connect: connection refused``)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        text = {
            errno.ECONNREFUSED: "connection refused",
            errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable",
            errno.ECONNRESET: "connection reset by peer",
            errno.EADDRNOTAVAIL: "cannot assign requested address",
        }.get(exc.errno, (exc.strerror or str(exc)).lower())
        return f"connect: {text}"
    return str(exc) or type(exc).__name__


async def tcp_probe(host: str, port: int, *, timeout_seconds: float = 1.0) -> ProbeOutcome:
    """Success iff a TCP connection opens within ``timeout_seconds``."""
    target = f"dial tcp {_hostport(host, port)}"
    try:
        async with asyncio.timeout(timeout_seconds):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeOutcome(False, f"{target}: i/o timeout")
    except OSError as exc:
        return ProbeOutcome(False, f"{target}: {_dial_error(exc)}")
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ProbeOutcome(True)


def _canonical(name: str) -> str:
    """Go's canonical header key (``x-check`` -> ``X-Check``), as the kubelet sends it."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _request_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The probe's headers as the kubelet builds them: the user's, then ``User-Agent:
    kube-probe/<version>`` and ``Accept: */*`` unless given (an empty ``Accept`` is
    dropped), ``Connection: close`` (no keep-alive) and no ``Accept-Encoding``."""
    out = [(_canonical(name), value) for name, value in headers]
    names = {name for name, _ in out}
    if "User-Agent" not in names:
        out.append(("User-Agent", USER_AGENT))
    if "Accept" not in names:
        out.append(("Accept", "*/*"))
    elif not any(value for name, value in out if name == "Accept"):
        out = [(name, value) for name, value in out if name != "Accept"]
    out.append(("Connection", "close"))
    return out


_INSECURE_TLS: ssl.SSLContext | None = None


def _insecure_tls() -> ssl.SSLContext:
    """A client TLS context that verifies nothing, as the kubelet's prober (made without
    loading any CA file, so building it does not block the event loop)."""
    global _INSECURE_TLS
    if _INSECURE_TLS is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _INSECURE_TLS = ctx
    return _INSECURE_TLS


def _cause(exc: BaseException) -> OSError | None:
    """The OSError under an httpx/httpcore error, if any."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _transport_error(exc: httpx.HTTPError, url: httpx.URL) -> str:
    """Go's wording for an HTTP client error (``Get "URL": ...``)."""
    hostport = _hostport(url.host, url.port or (443 if url.scheme == "https" else 80))
    text = str(exc)
    if isinstance(exc, httpx.ConnectError):
        tls = next((e for e in _chain(exc) if isinstance(e, ssl.SSLError)), None)
        if tls is not None:
            if "WRONG_VERSION_NUMBER" in str(tls) or "record layer" in str(tls):
                text = "http: server gave HTTP response to HTTPS client"
            else:
                text = f"tls: {tls.reason or tls}".lower()
        else:
            cause = _cause(exc)
            text = f"dial tcp {hostport}: {_dial_error(cause) if cause else text}"
    elif isinstance(exc, httpx.RemoteProtocolError):
        text = ("EOF" if "without sending" in text
                else "net/http: HTTP/1.x transport connection broken: malformed HTTP response")
    elif (cause := _cause(exc)) is not None:
        text = f"read tcp {hostport}: {_dial_error(cause).removeprefix('connect: ')}"
    return f'Get "{url}": {text}'


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 10:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


async def _read_at_most(resp: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, as sent (not decoded); the rest is never
    read, as the kubelet caps what it reads of a probe's answer."""
    data = bytearray()
    async for chunk in resp.aiter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


async def http_probe(
    host: str,
    port: int,
    *,
    path: str = "/",
    scheme: str = "HTTP",
    headers: Sequence[tuple[str, str]] = (),
    timeout_seconds: float = 1.0,
    any_status: bool = False,
) -> ProbeOutcome:
    """A GET as the kubelet sends it. Status 200-299 succeeds; 400 and above fails with
    ``HTTP probe failed with statuscode: N``. Redirects to the same host (by name, any
    port or scheme) are followed, up to 10 as Go's client; a redirect to another host is
    not followed and counts as a success with a warning (``Probe terminated redirects,
    Response body: ...``), as does any other 3xx answer. At most 10 KiB of the body is
    read. HTTPS does not verify certificates, as the kubelet. ``timeout_seconds`` bounds
    the whole exchange, redirects included. With ``any_status`` (a lifecycle hook's
    handler) every answer succeeds: only a failed exchange fails."""
    scheme_l = (scheme or "HTTP").lower()
    if not path.startswith("/"):
        path = "/" + path
    first = httpx.URL(f"{scheme_l}://{_hostport(host, port)}{path}")
    request_headers = _request_headers(headers)
    custom_host = next((v for n, v in request_headers if n == "Host"), None)
    url, reading = first, False
    async with httpx.AsyncClient(
        verify=_insecure_tls(), trust_env=False, timeout=None, follow_redirects=False
    ) as client:
        try:
            async with asyncio.timeout(timeout_seconds):
                hop_headers = request_headers
                for hop in range(MAX_REDIRECTS):
                    resp = await client.send(
                        httpx.Request("GET", url, headers=hop_headers), stream=True
                    )
                    try:
                        location = resp.headers.get("location")
                        if resp.status_code in _REDIRECT_CODES and location:
                            target = url.join(location)
                            if target.host == first.host:
                                if hop + 1 >= MAX_REDIRECTS:
                                    return ProbeOutcome(
                                        False,
                                        f'Get "{location}": stopped after '
                                        f"{MAX_REDIRECTS} redirects",
                                    )
                                # A custom Host survives only a relative redirect (Go).
                                keep = custom_host is not None and not httpx.URL(
                                    location
                                ).is_absolute_url
                                hop_headers = [
                                    (n, v) for n, v in request_headers if n != "Host" or keep
                                ]
                                url = target
                                continue
                        reading = True
                        body = await _read_at_most(resp, MAX_BODY)
                    finally:
                        await resp.aclose()
                    if any_status:
                        return ProbeOutcome(True, body.decode("utf-8", "replace"))
                    return _classify(resp.status_code, body)
        except TimeoutError:
            if reading:
                return ProbeOutcome(
                    False,
                    "context deadline exceeded (Client.Timeout or context cancellation "
                    "while reading body)",
                )
            return ProbeOutcome(
                False,
                f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                "awaiting headers)",
            )
        except httpx.InvalidURL as exc:
            return ProbeOutcome(False, f'Get "{url}": {exc}')
        except httpx.HTTPError as exc:
            return ProbeOutcome(False, _transport_error(exc, url))
    raise AssertionError("unreachable: the redirect loop returns")


def _classify(status: int, body: bytes) -> ProbeOutcome:
    text = body.decode("utf-8", "replace")
    if 200 <= status < 300:
        return ProbeOutcome(True, text)
    if 300 <= status < 400:
        return ProbeOutcome(True, f"Probe terminated redirects, Response body: {text}", True)
    return ProbeOutcome(False, f"HTTP probe failed with statuscode: {status}")


def _go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text for whole seconds or milliseconds (1s, 500ms, 1.5s)."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


# Go's names of the gRPC status codes (codes.Code.String()).
_GO_CODES = {
    "OK": "OK", "CANCELLED": "Canceled", "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument", "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound", "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied", "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition", "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange", "UNIMPLEMENTED": "Unimplemented", "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable", "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}


async def grpc_probe(
    host: str, port: int, *, service: str = "", timeout_seconds: float = 1.0
) -> ProbeOutcome:
    """The gRPC health checking protocol (``grpc.health.v1.Health/Check``), plaintext,
    as the kubelet runs it: connect (waiting until the timeout, as the kubelet dials
    with ``WithBlock``), then one Check within what is left of the timeout; success
    iff the answer is SERVING. Messages are the kubelet's. Runs on the process's gRPC
    loop (runtime/_grpcloop.py), never on the caller's."""
    from orchestra._loopthread import hop
    from orchestra.runtime._grpcloop import grpc_loop

    loop = grpc_loop()
    probe = _grpc_probe(host, port, service=service, timeout_seconds=timeout_seconds)
    if asyncio.get_running_loop() is loop:
        return await probe
    return await hop(loop, probe)


async def _grpc_probe(
    host: str, port: int, *, service: str, timeout_seconds: float
) -> ProbeOutcome:
    import grpc  # lazily: grpc is slow to import and most pods have no gRPC probe

    from orchestra.runtime._gen import health_pb2, health_pb2_grpc

    target = _hostport(host, port)
    within = _go_duration(timeout_seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.primary_user_agent", USER_AGENT)]
    ) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout_seconds)
        except TimeoutError:
            return ProbeOutcome(
                False,
                f'timeout: failed to connect service "{target}" within {within}: '
                "context deadline exceeded",
            )
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=max(0.001, deadline - loop.time()),
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return ProbeOutcome(
                    False,
                    "error: this server does not implement the grpc health protocol "
                    f"(grpc.health.v1.Health): {exc.details()}",
                )
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return ProbeOutcome(False, f"timeout: health rpc did not complete within {within}")
            name = _GO_CODES.get(code.name, code.name)
            return ProbeOutcome(
                False,
                f"error: health rpc probe failed: rpc error: code = {name} "
                f"desc = {exc.details()}",
            )
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return ProbeOutcome(True, "service healthy")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return ProbeOutcome(False, f'service unhealthy (responded with "{status}")')


async def network_probe(probe: Any, pod_ip: str, *, hook: bool = False
                        ) -> ProbeOutcome | None:
    """Run a tcpSocket, httpGet or grpc probe against the pod IP (or the probe's
    ``host``); None if ``probe`` is none of them (exec is the runtime's business). A
    ``hook``'s httpGet succeeds on any answer, as the kubelet's lifecycle handlers do."""
    timeout = probe_timeout(probe)
    http = probe_field(probe, "http_get")
    if http is not None:
        try:
            port = _port(probe_field(http, "port"))
        except ValueError as exc:
            return ProbeOutcome(False, str(exc))
        headers = [
            (str(probe_field(h, "name")), str(probe_field(h, "value") or ""))
            for h in (probe_field(http, "http_headers") or ())
        ]
        return await http_probe(
            probe_field(http, "host") or pod_ip,
            port,
            path=probe_field(http, "path") or "/",
            scheme=probe_field(http, "scheme") or "HTTP",
            headers=headers,
            timeout_seconds=timeout,
            any_status=hook,
        )
    tcp = probe_field(probe, "tcp_socket")
    if tcp is not None:
        try:
            port = _port(probe_field(tcp, "port"))
        except ValueError as exc:
            return ProbeOutcome(False, str(exc))
        return await tcp_probe(probe_field(tcp, "host") or pod_ip, port, timeout_seconds=timeout)
    grpc = probe_field(probe, "grpc")
    if grpc is not None:
        try:
            port = _port(probe_field(grpc, "port"))
        except ValueError as exc:
            return ProbeOutcome(False, str(exc))
        service = probe_field(grpc, "service") or ""
        return await grpc_probe(pod_ip, port, service=service, timeout_seconds=timeout)
    return None


ExecFn = Callable[[list[str], float], Awaitable[ExecResult]]


async def run_probe(probe: Any, pod_ip: str, exec_in_container: ExecFn, *,
                    no_handler: str, hook: bool = False) -> ProbeOutcome:
    """One probe, as the kubelet runs it: ``exec`` through the runtime (success iff exit
    0; a timeout is a failure), the network handlers against the pod's address. For a
    lifecycle ``hook``, a failed exec reads as the kubelet's hook runner words it
    (``command 'X' exited with N: , message: "output"``) and any HTTP answer succeeds."""
    command = exec_command(probe)
    if command is not None:
        try:
            result = await exec_in_container(command, probe_timeout(probe))
        except Timeout as exc:
            return ProbeOutcome(False, str(exc))
        if result.exit_code == 0:
            return ProbeOutcome(True, result.stdout)
        output = (result.stdout + result.stderr).strip()
        if hook:
            return ProbeOutcome(False, f"command '{' '.join(command)}' exited with "
                                       f"{result.exit_code}: , message: "
                                       f"{json.dumps(result.stdout + result.stderr)}")
        return ProbeOutcome(
            False, output or f'command "{" ".join(command)}" exited with {result.exit_code}'
        )
    outcome = await network_probe(probe, pod_ip, hook=hook)
    return outcome if outcome is not None else ProbeOutcome(False, no_handler)
