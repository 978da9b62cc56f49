"""The ``orchestra`` command: ``validate`` manifests, run a cluster in the foreground (``up``).

``orchestra up`` owns its cluster for the life of the command: SIGINT (Ctrl-C) or
SIGTERM stops every loop, container, proxy and file of it before the command exits 0,
so nothing it started outlives it. The live table is redrawn about once a second with
plain ANSI escapes when stdout is a terminal; otherwise (a pipe, a log) it is printed
only when it changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from orchestra._errors import Invalid, OrchestraError
from orchestra.objects._base import KubeObject
from orchestra.objects._kustomize import kustomization_file
from orchestra.objects._registry import load, load_each, to_yaml
from orchestra.present import age, pod_status, sidecar_names

if TYPE_CHECKING:
    from orchestra._cluster import Cluster
    from orchestra.objects import Deployment, Endpoints, Pod

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


# -- reading manifests ---------------------------------------------------------------


def _sources(paths: Sequence[str]) -> list[tuple[str, str | bytes]]:
    """``(label, text)`` for each manifest named: files, directories (their .yaml, .yml
    and .json files in name order) and ``-`` for stdin."""
    out: list[tuple[str, str | bytes]] = []
    for p in paths:
        if p == "-":
            out.append(("<stdin>", sys.stdin.buffer.read()))
            continue
        path = Path(p)
        if not path.exists():  # kubectl's words
            raise FileNotFoundError(f'the path "{p}" does not exist')
        if path.is_dir() and kustomization_file(path) is not None:
            out.append((str(path), to_yaml(load(path))))
        elif path.is_dir():
            files = sorted(f for f in path.iterdir()
                           if f.is_file() and f.suffix in _MANIFEST_SUFFIXES)
            out.extend((str(f), f.read_bytes()) for f in files)
        else:
            out.append((str(path), path.read_bytes()))
    return out


def _validate_text(label: str, text: str | bytes, out: TextIO) -> tuple[int, int]:
    """(valid objects, invalid documents) of one source; errors printed to ``out``.

    Every document is judged (not only up to the first invalid one), decoded by the
    same rules as ``load`` (bounded aliases and depth, strict keys, any bytes)."""
    source = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    try:
        docs = load_each(source)
    except Invalid as exc:
        print(f"{label}: not valid YAML or JSON: {exc}", file=out)
        return 0, 1
    valid = bad = 0
    for doc in docs:
        if doc.error is None:
            valid += 1
            continue
        bad += 1
        print(f"{label}: {doc.label} is invalid:", file=out)
        for err in doc.error.errors:
            print(f"  {err.path or '<object>'}: {err.message}", file=out)
    return valid, bad


def cmd_validate(args: argparse.Namespace) -> int:
    valid = bad = 0
    for filename in args.filename:
        try:
            sources = _sources([filename])
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except Invalid as exc:  # a kustomization that cannot be built
            print(f"{filename}: {exc}", file=sys.stdout)
            bad += 1
            continue
        for label, text in sources:
            v, b = _validate_text(label, text, sys.stdout)
            valid += v
            bad += b
    if bad:
        print(f"{bad} invalid document{'s' if bad != 1 else ''}; {valid} objects valid")
        return 1
    if not valid:  # an empty file, or a directory without manifests: a wrong path?
        print("error: no objects passed to validate", file=sys.stderr)
        return 1
    print(f"{valid} objects valid")
    return 0


# -- the table -----------------------------------------------------------------------


def _age(obj: Any, now: float) -> str:
    return age(obj.metadata.creation_timestamp, now)


def _name(obj: Any) -> str:
    ns = obj.metadata.namespace
    return obj.metadata.name if not ns or ns == "default" else f"{ns}/{obj.metadata.name}"


def _pod_row(pod: Any, now: float, cluster: Cluster | None = None) -> list[str]:
    """NAME READY STATUS RESTARTS AGE, and the REASON (with a cluster: its events)."""
    statuses = (pod.status.container_statuses or ()) if pod.status else ()
    sidecars = sidecar_names(pod)
    # As kubectl counts them: sidecars are containers of the pod (READY, RESTARTS).
    side = [cs for cs in ((pod.status.init_container_statuses or ()) if pod.status else ())
            if cs.name in sidecars]
    ready = sum(1 for cs in statuses if cs.ready) + sum(
        1 for cs in side if cs.started and cs.ready)
    status = pod_status(pod)
    inits = (pod.status.init_container_statuses or ()) if pod.status else ()
    initialized = any(c.type == "Initialized" and c.status == "True"
                      for c in (pod.status.conditions or () if pod.status else ()))
    counted = inits if status.startswith("Init:") and not initialized else (*statuses, *side)
    restarts = sum(cs.restart_count or 0 for cs in counted)
    total = len(pod.spec.containers) + len(sidecars)
    return [_name(pod), f"{ready}/{total}", status, str(restarts), _age(pod, now),
            _reason(cluster, pod) if cluster is not None else ""]


def _fine(pod: Any) -> bool:
    """Ready, or finished successfully."""
    st = pod.status
    return st is not None and (st.phase == "Succeeded" or any(
        c.type == "Ready" and c.status == "True" for c in st.conditions or ()))


def _reason(cluster: Cluster, pod: Any) -> str:
    """Why a pod is not (yet) fine, in a few words: its containers' waiting or
    termination message, why it is not scheduled, or its latest Warning event."""
    st = pod.status
    if _fine(pod):
        return ""
    for cs in (*((st.init_container_statuses or ()) if st else ()),
               *((st.container_statuses or ()) if st else ())):
        state = cs.state
        if state is None:
            continue
        if state.waiting is not None and state.waiting.message:
            return str(state.waiting.message)
        if state.terminated is not None and state.terminated.exit_code and \
                state.terminated.message:
            return str(state.terminated.message)
    for c in (st.conditions or ()) if st else ():
        if c.type == "PodScheduled" and c.status == "False" and c.message:
            return str(c.message)
    warnings = [e for e in cluster.events(pod) if e.type == "Warning"]
    if warnings:
        return f"{warnings[-1].reason}: {warnings[-1].message}"
    return ""


def _deploy_row(d: Any, now: float) -> list[str]:
    st = d.status
    want = d.spec.replicas if d.spec.replicas is not None else 1
    ready = (st.ready_replicas or 0) if st else 0
    updated = (st.updated_replicas or 0) if st else 0
    available = (st.available_replicas or 0) if st else 0
    return [_name(d), f"{ready}/{want}", str(updated), str(available), _age(d, now)]


def _ports(svc: Any) -> str:
    parts = []
    for p in svc.spec.ports or ():
        text = f"{p.port}:{p.node_port}" if p.node_port else str(p.port)
        parts.append(f"{text}/{p.protocol or 'TCP'}")
    return ",".join(parts) or "<none>"


def _ready_endpoints(cluster: Cluster, svc: Any) -> str:
    ep = cast("Endpoints | None",
              cluster.store.get_or_none("Endpoints", svc.metadata.name,
                                        namespace=svc.metadata.namespace))
    n = sum(len(subset.addresses or ()) for subset in (ep.subsets or ()) if ep is not None) \
        if ep is not None else 0
    return str(n)


def _url(cluster: Cluster, svc: Any) -> str:
    """Where this process reaches the service: ``http://127.0.0.1:NODEPORT`` for a
    NodePort or LoadBalancer service, else its local endpoint(s)."""
    if cluster.network is None or cluster.network.name == "fake":
        return "<none>"  # (no data plane)
    node_ports = [p.node_port for p in svc.spec.ports or () if p.node_port]
    if node_ports:
        return ",".join(f"http://127.0.0.1:{n}" for n in node_ports)
    out = []
    for p in svc.spec.ports or () if svc.spec.cluster_ip != "None" else ():
        try:
            host, port = cluster.endpoint(svc, p.port)
        except (OrchestraError, ValueError, KeyError, LookupError):
            continue
        out.append(f"{host}:{port}")
    return ",".join(out) or "<none>"


def _service_row(cluster: Cluster, svc: Any, now: float) -> list[str]:
    return [_name(svc), svc.spec.type or "ClusterIP", _ports(svc),
            _ready_endpoints(cluster, svc), _url(cluster, svc)]


def _format(headers: Sequence[str], rows: Iterable[Sequence[str]], width: int = 80
            ) -> list[str]:
    """Aligned columns two spaces apart (kubectl puts three: two fit 80 columns better),
    each line cut to ``width``."""
    rows = [list(r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows)
    return [_cut(line, width) for line in lines]


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 3] + "..."


def render(cluster: Cluster, width: int = 80, *, now: float | None = None) -> str:
    """The table ``orchestra up`` shows: deployments, pods (with the reason a pod is not
    fine; ``cluster.get_table("pods")`` has their nodes), services (with ready
    endpoints and the URL to reach them), each line at most ``width`` columns. Ages are
    as of ``now`` (the cluster's clock unless given)."""
    store = cluster.store
    now = cluster.clock.now() if now is None else now
    out: list[str] = []
    deploys = sorted(store.list("Deployment"), key=_name)
    if deploys:
        out += _format(["DEPLOYMENT", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                       (_deploy_row(d, now) for d in deploys), width)
        out.append("")
    pods = sorted(store.list("Pod"), key=_name)
    rows = [_pod_row(p, now, cluster) for p in pods]
    lines = _format(["POD", "READY", "STATUS", "RESTARTS", "AGE", "REASON"], rows, 1 << 16)
    out.append(_cut(lines[0], width))
    for row, line in zip(rows, lines[1:], strict=True):
        if len(line) <= width:
            out.append(line)
            continue
        # a reason too long for the row goes on a line of its own, under it
        reason = row[-1]
        out.append(_cut(line[:len(line) - len(reason)].rstrip(), width))
        out.append(_cut(f"    reason: {reason}", width))
    services = sorted((s for s in store.list("Service")
                       if not (s.metadata.name == "kubernetes"
                               and s.metadata.namespace == "default")), key=_name)
    if services:
        out.append("")
        out += _format(["SERVICE", "TYPE", "PORT(S)", "ENDPOINTS", "URL"],
                       (_service_row(cluster, s, now) for s in services), width)
    return "\n".join(out)


async def explain_unsettled(cluster: Cluster) -> str:
    """Why ``up --once`` gave up: for each Deployment not Available and each other pod
    not Ready, what ``wait_for``'s Timeout would say (status, events, log lines)."""
    from orchestra.present import explain_failure
    from orchestra.wait import predicate, summarize

    out: list[str] = []
    available = predicate("Deployment", "Available")
    owned: set[str] = set()
    for d in cast("list[Deployment]", cluster.store.list("Deployment")):
        pods = cluster.store.list("Pod", namespace=d.metadata.namespace,
                                  selector=d.spec.selector)
        owned.update(str(p.metadata.uid) for p in pods)
        if available(d):
            continue
        out.append(f"deployment/{d.metadata.name} is not Available: {summarize(d)}")
        out += await explain_failure(cluster, "Deployment", d.metadata.name or "",
                                     d.metadata.namespace, d)
    for p in cast("list[Pod]", cluster.store.list("Pod")):
        if str(p.metadata.uid) in owned or _fine(p):
            continue
        out.append(f"pod/{p.metadata.name} is not Ready: {summarize(p)}")
        out += await explain_failure(cluster, "Pod", p.metadata.name or "",
                                     p.metadata.namespace, p)
    return "\n".join(out)


# -- up ------------------------------------------------------------------------------


def _settled(cluster: Cluster) -> bool:
    """Every Deployment Available with all replicas updated, every other pod Ready or
    finished."""
    store = cluster.store
    for d in cast("list[Deployment]", store.list("Deployment")):
        st = d.status
        want = d.spec.replicas if d.spec.replicas is not None else 1
        if st is None or (st.updated_replicas or 0) < want or \
                (st.available_replicas or 0) < want or (st.replicas or 0) > want:
            return False
        if (st.observed_generation or 0) < (d.metadata.generation or 0):
            return False
        if not any(c.type == "Available" and c.status == "True" for c in st.conditions or ()):
            return False
    for p in cast("list[Pod]", store.list("Pod")):
        if p.metadata.deletion_timestamp is not None:
            return False
        pst = p.status
        if pst is not None and pst.phase in ("Succeeded", "Failed"):
            continue
        if pst is None or not any(c.type == "Ready" and c.status == "True"
                                  for c in pst.conditions or ()):
            return False
    return True


def _manifests(paths: Sequence[str]) -> list[KubeObject]:
    objs: list[KubeObject] = []
    for label, text in _sources(paths):
        try:
            objs.extend(load(text))
        except Invalid as exc:
            raise Invalid(label, exc.errors) from None
    return objs


async def _up(args: argparse.Namespace, objs: list[KubeObject]) -> int:
    from orchestra._cluster import Cluster

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tty = sys.stdout.isatty() and not args.once
    cluster = Cluster(runtime=args.runtime, nodes=args.nodes, network=args.network)
    code = 0
    try:
        await cluster.start()
        until = (f"at most {args.timeout:g}s until all is Available"
                 if args.once else "Ctrl-C to stop")
        print(f"cluster {cluster.name}: runtime {args.runtime}, {args.nodes} node"
              f"{'s' if args.nodes != 1 else ''}; {until}", flush=True)
        await cluster.apply(objs)
        deadline = loop.time() + args.timeout if args.timeout else None
        last = ""
        while not stop.is_set():
            if args.once and _settled(cluster):
                print(render(cluster), flush=True)
                break
            if deadline is not None and loop.time() >= deadline:
                if args.once:
                    print(render(cluster))
                    print(f"error: not everything became Available within {args.timeout:g}s",
                          file=sys.stderr)
                    print(await explain_unsettled(cluster), file=sys.stderr)
                    code = 1
                break
            if not args.once:
                width = shutil.get_terminal_size((80, 24)).columns if tty else 80
                table = render(cluster, width)
                if tty:
                    sys.stdout.write("\x1b[H\x1b[2J" + table + "\n")
                    sys.stdout.flush()
                else:
                    # into a pipe or a log, a new table only when something but the
                    # ages changed (all ages as of time 0 compare equal)
                    key = render(cluster, width, now=0.0)
                    if key != last:
                        print(table + "\n", flush=True)
                    last = key
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2 if args.once else 1.0)
    except OrchestraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        print("stopping the cluster ...", file=sys.stderr, flush=True)
        await cluster.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("stopped", file=sys.stderr)
    return code


def cmd_up(args: argparse.Namespace) -> int:
    try:
        objs = _manifests(args.filename)
    except Invalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not objs:  # kubectl's words
        print("error: no objects passed to apply", file=sys.stderr)
        return 1
    if args.once and not args.timeout:
        args.timeout = 120.0
    return asyncio.run(_up(args, objs))


def cmd_build_busybox(args: argparse.Namespace) -> int:
    from orchestra.runtime.containerd._images import build_busybox_archive

    if not os.access(args.busybox, os.X_OK):
        print(f"error: no busybox program at {args.busybox}: install Debian's "
              "busybox-static (apt-get install busybox-static), or name one with "
              "--busybox PATH", file=sys.stderr)
        return 1
    built = build_busybox_archive(args.out, args.ref, args.busybox)
    print(f"{args.out}: {built.name} {built.manifest_digest}")
    return 0


# -- main ----------------------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orchestra")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from orchestra import __version__

        return __version__


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="orchestra",
        description="Kubernetes' container orchestration as a library inside your process.")
    ap.add_argument("--version", action="version", version=f"orchestra {_version()}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="{validate,up,image}")

    v = sub.add_parser(
        "validate", help="check manifests; print errors with field paths",
        description="Check manifests as the API server would, without a cluster: every "
                    "error of every document, with its field path. Exit 1 if any is "
                    "invalid.",
        epilog="example: orchestra validate -f examples/app -f examples/web.yaml")
    v.add_argument("-f", "--filename", action="append", required=True,
                   help="a manifest file, a directory of them, or - for stdin (repeatable)")
    v.set_defaults(func=cmd_validate)

    u = sub.add_parser(
        "up", help="run a cluster in the foreground with the manifests applied",
        description="Start a cluster, apply the manifests and show its workloads, pods "
                    "and services until Ctrl-C, which tears it all down.",
        epilog="example: orchestra up -f examples/app  (then open the frontend's URL)")
    u.add_argument("-f", "--filename", action="append", required=True,
                   help="a manifest file, a directory of them, or - for stdin (repeatable)")
    u.add_argument("--runtime", default="process",
                   choices=["process", "fake", "containerd"],
                   help="what a container is (default: process, real processes, no root)")
    u.add_argument("--network", default=None, choices=["loopback", "bridge", "fake"],
                   help="default: the runtime's (fake for fake, bridge for containerd, "
                        "loopback otherwise)")
    u.add_argument("--nodes", type=int, default=1, help="how many nodes (default: 1)")
    u.add_argument("--once", action="store_true",
                   help="print the table once everything is Available, then stop")
    u.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="stop after S seconds (with --once: give up, exit 1)")
    u.set_defaults(func=cmd_up)

    img = sub.add_parser("image", help="image helpers")
    isub = img.add_subparsers(dest="image_command", required=True,
                              metavar="{build-busybox}")
    b = isub.add_parser("build-busybox", help="build a busybox OCI image archive")
    b.add_argument("out", metavar="OUT.tar", help="where to write the OCI image archive")
    b.add_argument("--ref", default="busybox:latest",
                   help="the image name it carries (default: busybox:latest)")
    b.add_argument("--busybox", default="/bin/busybox",
                   help="a static busybox binary to put in it (default: /bin/busybox, "
                        "from Debian's busybox-static)")
    b.set_defaults(func=cmd_build_busybox)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # stdout went away (``orchestra ... | head``): no traceback
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
