"""One request and its response through the HTTP data plane.

An exchange is routed when its request head is complete (by the routing table in force
at that moment: a table swap affects the next request, even on a kept-alive connection)
and then either answered directly (404 no route, 503 no healthy upstream, redirects,
faults) or forwarded to one backend of the chosen cluster.

Invariants and decisions:

- Bodies stream both ways: request body bytes go to the backend as they arrive (held
  only until the backend connection is up), response bytes to the client as they
  arrive; each side's full buffer pauses reading from the other.
- Framing is re-done on each hop: hop-by-hop headers (``Connection`` and the headers it
  names, ``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``,
  ``Upgrade``) are dropped; a body keeps its Content-Length, or is sent chunked (to a
  backend always HTTP/1.1; to an HTTP/1.0 client, close-delimited).
- Each part keeps its own invariants: ``_request`` (routing, forwarded headers, the
  body copy kept for retries and mirrors), ``_tries`` (connecting, timeouts, retries and
  back-off, the pending queue), ``_response`` (relay, resend on a stale pooled
  connection, upgrades), ``_ending`` (the proxy's own answers, ends), ``_state`` (the
  fields, the access record, the balancer's counts). They build upwards (``_state``,
  ``_ending``, ``_tries``, then ``_request`` and ``_response`` side by side); each part
  calls only those below it.
"""

from __future__ import annotations

from orchestra.net.l7._request import RequestSide
from orchestra.net.l7._response import ResponseSide

__all__ = ["Exchange"]


class Exchange(RequestSide, ResponseSide):
    """One request and its response: the request side and the response side over the
    shared tries, endings and state."""
