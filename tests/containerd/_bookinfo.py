"""The versioned app of the traffic suite (``tests/apps/versioned_http.py``) for the
busybox image, which has no Python: a shell script serving HTTP/1.1 behind busybox
``nc -ll -e`` (a process per connection, requests answered in turn while the connection
stays open). busybox ``httpd`` would not do: it runs CGI scripts only under
``/cgi-bin/`` and closes every connection, where the suite needs every path answered.

What it answers, as the Python app does: JSON ``{"version", "pod", "path", "method",
"host", "headers", "body_len", "sha", "conn_requests"}`` for any path (header names as
they came: :func:`tests.net._http.seen` lower-cases them; ``sha``: the sha256 of the
request body); ``/slow/<ms>`` waits first, ``/status/<code>`` answers that code,
``/flaky`` answers 503 to every other request (the first fails), ``/counts`` tells how
many requests each path got, ``/bodies`` the sha256 of each non-empty request body per
path (what a mirror got), after ``/fail/on`` every request but ``/ready`` and
``/fail/off`` answers 500. ``/reset`` forgets the counts, the bodies and ``/fail/on``
(the containerd suite shares one cluster between tests). Bodies (Content-Length or
chunked) are read by ``dd``, whole and exactly (``iflag=fullblock``, no byte of the next
request), into ``sha256sum``: a shell variable cannot hold a binary body (it ends at the
first NUL). The state lives in files: every connection has a process of its own; a
request appends a line to its path's file (appends are atomic, where read-and-rewrite
would lose counts to concurrent connections)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orchestra as oc

SERVE = r"""#!/bin/sh
S=/tmp/state BODIES=/tmp/bodies B=/tmp/body.$$
EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
cr=$(printf '\r')
n=0
esc() { e=${1//\\/\\\\}; e=${e//\"/\\\"}; }
while IFS= read -r line; do
  line=${line%"$cr"}
  [ -z "$line" ] && continue
  set -f; set -- $line; set +f
  method=$1 target=$2 path=${2%%\?*}
  host= len=0 close= chunked= hdrs=
  while IFS= read -r h; do
    h=${h%"$cr"}
    [ -z "$h" ] && break
    name=${h%%:*} value=${h#*:}
    while [ "${value# }" != "$value" ]; do value=${value# }; done
    case $name in
      [Hh][Oo][Ss][Tt]) host=$value;;
      [Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]) len=$value;;
      [Cc][Oo][Nn][Nn][Ee][Cc][Tt][Ii][Oo][Nn]) case $value in *[Cc]lose*) close=1;; esac;;
      [Tt][Rr][Aa][Nn][Ss][Ff][Ee][Rr]-[Ee][Nn][Cc][Oo][Dd][Ii][Nn][Gg]) chunked=1;;
    esac
    esc "$value"
    hdrs="$hdrs${hdrs:+, }\"$name\": \"$e\""
  done
  got=0 sha=$EMPTY
  if [ -n "$chunked" ]; then
    : > "$B"
    while IFS= read -r size; do
      size=$((0x${size%%[;$cr]*}))
      if [ "$size" -eq 0 ]; then
        while IFS= read -r t; do [ -z "${t%"$cr"}" ] && break; done
        break
      fi
      dd bs="$size" count=1 iflag=fullblock 2>/dev/null >> "$B"; IFS= read -r t
      got=$((got + size))
    done
    [ "$got" -gt 0 ] && sha=$(sha256sum < "$B")
    rm -f "$B"
  elif [ "$len" -gt 0 ]; then
    sha=$(dd bs="$len" count=1 iflag=fullblock 2>/dev/null | sha256sum); got=$len
  fi
  sha=${sha%% *}
  n=$((n + 1))
  case $path in
    /slow/*) ms=${path#/slow/}; f=00$((ms % 1000)); sleep "$((ms / 1000)).${f#${f%???}}";;
  esac
  code=200
  f=$S/${path//\//%2F}
  echo >> "$f"
  [ "$got" -gt 0 ] && echo "$sha" >> "$BODIES/${path//\//%2F}"
  case $path in
    /status/*) code=${path#/status/};;
    /flaky) [ $(($(wc -l < "$f") % 2)) -eq 1 ] && code=503;;
    /fail/on) : > "$S/.failing";;
    /fail/off) rm -f "$S/.failing";;
    /reset) rm -f "$S"/* "$S/.failing" "$BODIES"/*;;
  esac
  case $path in /ready|/fail/*|/reset) ;; *) [ -f "$S/.failing" ] && code=500;; esac
  if [ "$path" = /counts ]; then
    body=
    for f in "$S"/*; do
      [ -f "$f" ] || continue
      k=${f#$S/}
      body="$body${body:+, }\"${k//%2F//}\": $(wc -l < "$f")"
    done
    body="{$body}"
  elif [ "$path" = /bodies ]; then
    body=
    for f in "$BODIES"/*; do
      [ -f "$f" ] || continue
      k=${f#$BODIES/} l=
      while read -r s; do l="$l${l:+, }\"$s\""; done < "$f"
      body="$body${body:+, }\"${k//%2F//}\": [$l]"
    done
    body="{$body}"
  else
    esc "$target"; t=$e; esc "$host"
    body="{\"version\": \"$VERSION\", \"pod\": \"$POD_NAME\", \"path\": \"$t\", \
\"method\": \"$method\", \"host\": \"$e\", \"headers\": {$hdrs}, \"body_len\": $got, \
\"sha\": \"$sha\", \"conn_requests\": $n}"
  fi
  case $code in
    200) r=OK;; 404) r="Not Found";; 500) r="Internal Server Error";;
    503) r="Service Unavailable";; *) r=Status;;
  esac
  [ "$method" = HEAD ] && out= || out=$body
  [ -n "$close" ] && close="Connection: close$cr
"
  printf 'HTTP/1.1 %s %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n%s\r\n%s' \
    "$code" "$r" "${#body}" "$close" "$out"
  [ -n "$close" ] && exit 0
done
"""

START = ("mkdir -p /tmp/state /tmp/bodies && cat > /tmp/serve <<'EOF'\n" + SERVE + "EOF\n"
         "chmod +x /tmp/serve && exec nc -ll -p \"$PORT\" -e /tmp/serve")


def shell_app(version: str, port: int) -> dict[str, Any]:
    """The app as a busybox container named ``app`` with a port named ``http`` and a
    readiness probe on ``/ready`` (a :data:`tests.net._http.Container`)."""
    return {"name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", START],
            "env": [{"name": "VERSION", "value": version}, {"name": "PORT", "value": str(port)}],
            "ports": [{"name": "http", "containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                               "periodSeconds": 1}}


@contextlib.asynccontextmanager
async def bridge_cluster(socket: str, archive: str, objects: list[Any],
                         ready: Callable[[oc.Cluster], Awaitable[None]]
                         ) -> AsyncIterator[oc.Cluster]:
    """A one-node cluster on containerd (``socket``, busybox from ``archive``) with the
    bridge network, ``objects`` applied and ``ready`` awaited."""
    async with oc.Cluster(runtime="containerd", network="bridge", nodes=1,
                          runtime_options={"address": socket,
                                           "image_archives": [archive]}) as c:
        await c.apply(objects)
        await ready(c)
        yield c
