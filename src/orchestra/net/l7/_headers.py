"""Building what goes on the wire: request heads for backends, redirect locations,
status lines, header modifications. Hop-by-hop headers (``Connection`` and those it
names, ``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``,
``Upgrade``) never cross the proxy; framing is re-done on each hop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestra.net.l7._table import HeaderMods, Match, Redirect, Route

if TYPE_CHECKING:
    from orchestra.net.l7._state import ExchangeState

__all__ = ["HOP", "modify", "redirect_location", "replace_prefix", "request_head", "status_text"]

HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
                 b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade"})
_FORWARD_DROP = HOP | {b"x-forwarded-for", b"x-forwarded-proto", b"x-request-id"}
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other",
           307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
           404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


def request_head(ex: ExchangeState, route: Route, match: Match, path: str, query: str, *,
                 shadow: bool = False) -> bytes:
    """The request line and headers sent to a backend (or, ``shadow``, to a mirror)."""
    listener = ex.down.listener
    hop = _FORWARD_DROP | ex.conn_named if ex.conn_named else _FORWARD_DROP
    added = (b"x-forwarded-for: %b\r\nx-forwarded-proto: %b\r\nx-request-id: %b\r\n"
             % (ex.xff.encode("latin-1"), listener.scheme.encode(),
                ex.request_id.encode("latin-1")))
    lows, headers = ex.lows, ex.headers
    if route.rewrite is None and route.request_headers is None and not shadow and \
            not ex.upgrade:  # the common case, in plain loops (no tuples rebuilt)
        target = path + ("?" + query if query else "")
        parts = [f"{ex.method} {target} HTTP/1.1\r\n".encode("latin-1")]
        for i in range(len(headers)):
            if lows[i] not in hop:
                parts.append(b"%b: %b\r\n" % headers[i])
        parts.append(added)
        if ex.chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)
    out = [h for low, h in zip(lows, headers, strict=True) if low not in hop]
    out.append((b"x-forwarded-for", ex.xff.encode("latin-1")))
    out.append((b"x-forwarded-proto", listener.scheme.encode()))
    out.append((b"x-request-id", ex.request_id.encode("latin-1")))
    rewrite = route.rewrite
    if rewrite is not None:
        if rewrite.hostname:
            out = [(n, v) for n, v in out if n.lower() != b"host"]
            out.append((b"host", rewrite.hostname.encode("latin-1")))
        if rewrite.path is not None:
            path = rewrite.path
        elif rewrite.prefix is not None:
            path = replace_prefix(path, match, rewrite.prefix)
    if route.request_headers is not None:
        out = modify(out, route.request_headers)
    if shadow:  # a mirrored copy: Host gets "-shadow" (as Envoy does), then close
        out = [(n, v + b"-shadow" if n.lower() == b"host" else v) for n, v in out]
        out.append((b"connection", b"close"))
    elif ex.upgrade:
        out.append((b"connection", b"upgrade"))
        out += [h for low, h in zip(ex.lows, ex.headers, strict=True) if low == b"upgrade"]
    if ex.chunked:
        out.append((b"transfer-encoding", b"chunked"))
    target = path + ("?" + query if query else "")
    return b"".join([f"{ex.method} {target} HTTP/1.1\r\n".encode("latin-1"),
                     *[b"%b: %b\r\n" % h for h in out], b"\r\n"])


def redirect_location(rd: Redirect, match: Match, scheme_in: str, authority: str, path: str,
                      query: str) -> str:
    """The ``Location`` of a redirect: unset parts keep the request's; the port is
    dropped when the scheme changes (its well-known port) or is the scheme's default."""
    scheme = rd.scheme or scheme_in
    host, req_port = authority, ""
    if host.rfind(":") > host.rfind("]"):
        host, _, req_port = host.rpartition(":")
    if rd.hostname:
        host = rd.hostname
    if rd.port is not None:
        port = str(rd.port)
    elif rd.scheme and rd.scheme != scheme_in:
        port = ""
    else:
        port = req_port
    if (scheme, port) in (("http", "80"), ("https", "443")):
        port = ""
    if rd.path is not None:
        path = rd.path
    elif rd.prefix is not None:
        path = replace_prefix(path, match, rd.prefix)
    return f"{scheme}://{host}{':' + port if port else ''}{path}{'?' + query if query else ''}"


def status_text(status: int) -> bytes:
    return REASONS.get(status, "Unknown").encode()


def modify(headers: list[tuple[bytes, bytes]], mods: HeaderMods) -> list[tuple[bytes, bytes]]:
    drop = {n.lower().encode("latin-1") for n in mods.remove}
    drop |= {n.lower().encode("latin-1") for n, _ in mods.set}
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    out += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in mods.set]
    out += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in mods.add]
    return out


def replace_prefix(path: str, match: Match, replacement: str) -> str:
    if match.path is not None and match.path.kind == "StringPrefix" and \
            path.startswith(match.path.value):
        return replacement + path[len(match.path.value):]
    matched = match.path.value if match.path is not None and match.path.kind == "Prefix" \
        else "/"
    base = matched.rstrip("/")
    rest = path[len(base):] if path.startswith(base) else path
    new = replacement.rstrip("/") + rest
    if not new.startswith("/"):
        new = "/" + new
    return new
