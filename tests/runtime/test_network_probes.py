"""The kubelet's network probes (httpGet, tcpSocket, grpc) against servers in the test,
checked for the kubelet's outcomes and messages word for word."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from orchestra.runtime import ProbeOutcome
from orchestra.runtime._gen import health_pb2, health_pb2_grpc
from orchestra.runtime._probe import MAX_BODY, network_probe

pytestmark = pytest.mark.anyio
IP = "127.0.0.1"


class Web:
    """A scripted HTTP/1.1 server: answers by path, records every request's head."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.heads: list[str] = []
        self.port = 0
        self.other_port = 0  # another server on the same host, for cross-port redirects

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._handle, IP, 0, ssl=self.tls)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _answer(self, path: str) -> tuple[int, list[str], bytes] | None:
        port = self.port
        routes: dict[str, tuple[int, list[str], bytes]] = {
            "/ok": (200, [], b"fine"),
            "/fail": (500, [], b"broken"),
            "/same": (302, ["Location: /fail"], b""),
            "/same-ok": (301, ["Location: /ok"], b""),
            "/other-port": (307, [f"Location: http://{IP}:{self.other_port}/fail"], b""),
            "/other-host": (302, [f"Location: http://localhost:{port}/fail"], b"moved"),
            "/loop": (302, ["Location: /loop"], b""),
            "/no-location": (302, [], b"nowhere"),
            "/not-modified": (304, [], b""),
            "/big": (200, [], b"x" * (1 << 20)),
        }
        if path == "/hang":
            return None
        if path == "/headers":
            return 200, [], self.heads[-1].encode()
        return routes.get(path, (404, [], b"no such page"))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.heads.append(head)
        path = head.split()[1]
        answer = self._answer(path)
        if answer is None:
            await asyncio.sleep(30)
            writer.close()
            return
        code, extra, body = answer
        lines = [f"HTTP/1.1 {code} X", f"Content-Length: {len(body)}", *extra, "", ""]
        writer.write("\r\n".join(lines).encode() + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()


@pytest.fixture
async def web() -> AsyncIterator[Web]:
    w, other = Web(), Web()
    servers = [await w.start(), await other.start()]
    w.other_port = other.port
    try:
        yield w
    finally:
        for s in servers:
            s.close()


async def get(port: int, path: str, seconds: float = 1.0, **http: Any) -> ProbeOutcome:
    probe = {"httpGet": {"path": path, "port": port, **http}, "timeoutSeconds": seconds}
    outcome = await network_probe(probe, IP)
    assert outcome is not None
    return outcome


async def test_http_status_codes(web: Web) -> None:
    assert await get(web.port, "/ok") == ProbeOutcome(True, "fine")
    assert await get(web.port, "/fail") == ProbeOutcome(
        False, "HTTP probe failed with statuscode: 500")
    assert await get(web.port, "/missing") == ProbeOutcome(
        False, "HTTP probe failed with statuscode: 404")


async def test_same_host_redirects_are_followed(web: Web) -> None:
    # A redirect to the same host is followed, so a redirect to a failing page fails.
    assert await get(web.port, "/same") == ProbeOutcome(
        False, "HTTP probe failed with statuscode: 500")
    assert [h.split()[1] for h in web.heads] == ["/same", "/fail"]
    assert await get(web.port, "/same-ok") == ProbeOutcome(True, "fine")
    # Same host name, another port: still followed (the kubelet compares host names).
    assert await get(web.port, "/other-port") == ProbeOutcome(
        False, "HTTP probe failed with statuscode: 500")


async def test_redirect_to_another_host_is_a_success_with_a_warning(web: Web) -> None:
    outcome = await get(web.port, "/other-host")
    assert outcome == ProbeOutcome(True, "Probe terminated redirects, Response body: moved",
                                   warning=True)
    assert [h.split()[1] for h in web.heads] == ["/other-host"]  # not followed
    # Any other 3xx answer is a warning too.
    assert await get(web.port, "/no-location") == ProbeOutcome(
        True, "Probe terminated redirects, Response body: nowhere", warning=True)
    assert await get(web.port, "/not-modified") == ProbeOutcome(
        True, "Probe terminated redirects, Response body: ", warning=True)


async def test_redirect_loop_stops_after_ten(web: Web) -> None:
    assert await get(web.port, "/loop") == ProbeOutcome(
        False, 'Get "/loop": stopped after 10 redirects')
    assert len(web.heads) == 10


async def test_body_is_read_up_to_ten_kib(web: Web) -> None:
    outcome = await get(web.port, "/big")
    assert outcome.success and outcome.message == "x" * MAX_BODY


async def test_request_headers(web: Web) -> None:
    outcome = await get(web.port, "/headers")
    lines = outcome.message.split("\r\n")
    assert lines[0] == "GET /headers HTTP/1.1"
    headers = [tuple(line.split(": ", 1)) for line in lines[1:] if line]
    names = [name.lower() for name, _ in headers]
    assert sorted(names) == ["accept", "connection", "host", "user-agent"]
    assert dict((k.lower(), v) for k, v in headers) == {
        "host": f"{IP}:{web.port}", "user-agent": "kube-probe/1.31", "accept": "*/*",
        "connection": "close"}
    custom = [{"name": "host", "value": "example.test"}, {"name": "x-check", "value": "a"},
              {"name": "X-Check", "value": "b"}, {"name": "Accept", "value": ""},
              {"name": "User-Agent", "value": "mine"}]
    outcome = await get(web.port, "/headers", httpHeaders=custom)
    lines = outcome.message.split("\r\n")[1:]
    assert "Host: example.test" in lines
    assert [line for line in lines if line.lower().startswith("x-check")] == [
        "X-Check: a", "X-Check: b"]
    assert "User-Agent: mine" in lines
    assert not any(line.lower().startswith(("accept", "user-agent: kube")) for line in lines)


async def test_connection_errors_and_timeouts(web: Web) -> None:
    closed = Web()
    server = await closed.start()
    server.close()
    await server.wait_closed()
    port = closed.port
    assert await get(port, "/ok") == ProbeOutcome(
        False, f'Get "http://{IP}:{port}/ok": dial tcp {IP}:{port}: connect: connection refused')
    assert await get(web.port, "/hang", seconds=0.2) == ProbeOutcome(
        False, f'Get "http://{IP}:{web.port}/hang": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)")
    tcp = await network_probe({"tcpSocket": {"port": port}}, IP)
    assert tcp == ProbeOutcome(False, f"dial tcp {IP}:{port}: connect: connection refused")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (apt-get install openssl) to make a certificate")
    base = tmp_path_factory.mktemp("tls")
    cert, key = str(base / "cert.pem"), str(base / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=probe.test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    yield cert, key
    os.unlink(cert)
    os.unlink(key)


async def test_https_does_not_verify_the_certificate(certificate: tuple[str, str]) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    tls = Web(tls=ctx)
    server = await tls.start()
    try:
        assert await get(tls.port, "/ok", scheme="HTTPS") == ProbeOutcome(True, "fine")
        assert await get(tls.port, "/fail", scheme="HTTPS") == ProbeOutcome(
            False, "HTTP probe failed with statuscode: 500")
    finally:
        server.close()

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # What an HTTP server answers to a TLS hello: a 400, in plain text.
        writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, IP, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await get(port, "/ok", scheme="HTTPS") == ProbeOutcome(
            False, f'Get "https://{IP}:{port}/ok": http: server gave HTTP response to HTTPS '
            "client")
    finally:
        server.close()


class Health(health_pb2_grpc.HealthServicer):
    """The standard health service's behaviour: known services answer their status,
    unknown ones NOT_FOUND ``unknown service``."""

    def __init__(self) -> None:
        self.status = {"": health_pb2.HealthCheckResponse.SERVING,
                       "db": health_pb2.HealthCheckResponse.NOT_SERVING}
        self.seen: list[str] = []

    async def Check(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext[Any, Any]
                    ) -> health_pb2.HealthCheckResponse:
        self.seen.append(request.service)
        if request.service not in self.status:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=self.status[request.service])


async def grpc_check(port: int, service: str = "", seconds: float = 1.0) -> ProbeOutcome:
    probe = {"grpc": {"port": port, "service": service}, "timeoutSeconds": seconds}
    outcome = await network_probe(probe, IP)
    assert outcome is not None
    return outcome


async def test_grpc_health_probe() -> None:
    health = Health()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(f"{IP}:0")
    bare = grpc.aio.server()  # no health service at all
    bare_port = bare.add_insecure_port(f"{IP}:0")
    await server.start()
    await bare.start()
    try:
        assert await grpc_check(port) == ProbeOutcome(True, "service healthy")
        assert await grpc_check(port, "db") == ProbeOutcome(
            False, 'service unhealthy (responded with "NOT_SERVING")')
        assert await grpc_check(port, "cache") == ProbeOutcome(
            False, "error: health rpc probe failed: rpc error: code = NotFound "
            "desc = unknown service")
        assert health.seen == ["", "db", "cache"]
        outcome = await grpc_check(bare_port)
        assert outcome.message.startswith(
            "error: this server does not implement the grpc health protocol "
            "(grpc.health.v1.Health): "), outcome
        assert not outcome.success
    finally:
        await server.stop(None)
        await bare.stop(None)
    assert await grpc_check(port, seconds=0.3) == ProbeOutcome(
        False, f'timeout: failed to connect service "{IP}:{port}" within 300ms: '
        "context deadline exceeded")


async def test_a_waiting_probe_leaves_the_event_loop_free(web: Web) -> None:
    """While a probe waits for an answer, other tasks run: a probe that blocked the loop
    would already be finished when the other task next got to run."""
    probe = asyncio.create_task(get(web.port, "/hang", seconds=1.0))
    ticks = 0
    while not web.heads:  # the request has arrived: the probe is now waiting
        await asyncio.sleep(0.01)
        ticks += 1
    await asyncio.sleep(0.05)
    assert not probe.done() and ticks > 0
    outcome = await probe
    assert not outcome.success and "awaiting headers" in outcome.message
