"""Network probes (tcpSocket, httpGet, grpc) as the kubelet runs them, for runtimes whose pods
have a reachable IP (process, containerd).

Probes are network I/O, so their timeout (``timeoutSeconds``, default 1) is real time,
not the cluster clock. Messages are the kubelet's, so that events read as in Kubernetes:
``HTTP probe failed with statuscode: 500``,
``Get "http://127.1.0.2:8080/healthz": dial tcp 127.1.0.2:8080: connect: connection refused``,
``dial tcp 127.1.0.2:5432: connect: connection refused``.

``probe`` arguments are ``orchestra.objects.Probe`` models (snake_case attributes) or
plain Kubernetes dicts (camelCase keys); :func:`probe_field` reads either.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from orchestra._errors import Timeout
from orchestra.runtime._protocol import ExecResult, ProbeOutcome

USER_AGENT = "kube-probe/1.31"
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


async def http_probe(
    host: str,
    port: int,
    *,
    path: str = "/",
    scheme: str = "HTTP",
    headers: Sequence[tuple[str, str]] = (),
    timeout_seconds: float = 1.0,
) -> ProbeOutcome:
    """A GET as the kubelet sends it; success for status 200-399 (redirects are not
    followed: a 3xx is a success). HTTPS does not verify certificates, as the kubelet."""
    scheme_l = (scheme or "HTTP").lower()
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme_l}://{_hostport(host, port)}{path}"
    names = {name.lower() for name, _ in headers}
    request = [f"GET {path} HTTP/1.1"]
    if "host" not in names:
        request.append(f"Host: {_hostport(host, port)}")
    if "user-agent" not in names:
        request.append(f"User-Agent: {USER_AGENT}")
    if "accept" not in names:
        request.append("Accept: */*")
    request.extend(f"{name}: {value}" for name, value in headers)
    request.append("Connection: close")
    payload = ("\r\n".join(request) + "\r\n\r\n").encode("latin-1", "replace")
    ctx: ssl.SSLContext | None = None
    if scheme_l == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_seconds):
            try:
                reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
            except OSError as exc:
                return ProbeOutcome(
                    False, f'Get "{url}": dial tcp {_hostport(host, port)}: {_dial_error(exc)}'
                )
            writer.write(payload)
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return ProbeOutcome(
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
            "awaiting headers)",
        )
    except (OSError, ssl.SSLError) as exc:
        return ProbeOutcome(False, f'Get "{url}": {_dial_error(exc)}')
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        if not status_line:
            return ProbeOutcome(False, f'Get "{url}": EOF')
        return ProbeOutcome(False, f'Get "{url}": net/http: malformed HTTP response')
    code = int(parts[1])
    if 200 <= code < 400:
        return ProbeOutcome(True)
    return ProbeOutcome(False, f"HTTP probe failed with statuscode: {code}")


_GRPC_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _health_request(service: str) -> bytes:
    """``grpc.health.v1.HealthCheckRequest{service}`` in protobuf wire format."""
    data = service.encode()
    if not data:
        return b""
    length = bytearray()
    n = len(data)
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(length) + data


def _health_status(data: bytes) -> int:
    """The ``status`` enum (field 1) of a ``HealthCheckResponse``; 0 when absent."""
    pos, status = 0, 0
    while pos < len(data):
        key = data[pos]
        pos += 1
        if key & 7 != 0:  # only varints are expected; stop at anything else
            break
        value, shift = 0, 0
        while pos < len(data):
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if key >> 3 == 1:
            status = value
    return status


async def grpc_probe(
    host: str, port: int, *, service: str = "", timeout_seconds: float = 1.0
) -> ProbeOutcome:
    """The gRPC health checking protocol (``grpc.health.v1.Health/Check``), plaintext,
    as the kubelet runs it; success iff the answer is SERVING."""
    import grpc  # lazily: grpc is slow to import and most pods have no gRPC probe

    target = _hostport(host, port)
    within = f"{timeout_seconds:g}s"
    async with grpc.aio.insecure_channel(target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            reply = await check(_health_request(service), timeout=timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                return ProbeOutcome(
                    False, f'timeout: failed to connect service "{target}" within {within}'
                )
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return ProbeOutcome(False, f"timeout: health rpc did not complete within {within}")
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return ProbeOutcome(
                    False,
                    "this server does not implement the grpc health protocol "
                    f"(grpc.health.v1.Health): {exc.details()}",
                )
            return ProbeOutcome(False, f"error: health rpc probe failed: {exc.details()}")
    status = _health_status(bytes(reply))
    if status == 1:
        return ProbeOutcome(True)
    name = _GRPC_STATUS.get(status, str(status))
    return ProbeOutcome(False, f'service unhealthy (responded with "{name}")')


async def network_probe(probe: Any, pod_ip: str) -> ProbeOutcome | None:
    """Run a tcpSocket, httpGet or grpc probe against the pod IP (or the probe's
    ``host``); None if ``probe`` is none of them (exec is the runtime's business)."""
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
                    no_handler: str) -> ProbeOutcome:
    """One probe, as the kubelet runs it: ``exec`` through the runtime (success iff exit
    0; a timeout is a failure), the network handlers against the pod's address."""
    command = exec_command(probe)
    if command is not None:
        try:
            result = await exec_in_container(command, probe_timeout(probe))
        except Timeout as exc:
            return ProbeOutcome(False, str(exc))
        if result.exit_code == 0:
            return ProbeOutcome(True, result.stdout)
        output = (result.stdout + result.stderr).strip()
        return ProbeOutcome(
            False, output or f'command "{" ".join(command)}" exited with {result.exit_code}'
        )
    outcome = await network_probe(probe, pod_ip)
    return outcome if outcome is not None else ProbeOutcome(False, no_handler)
