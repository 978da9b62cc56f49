"""Kernel NAT for Services, as kube-proxy's nftables mode does it.

One table of our own (``table ip orchestra-<hash>``), replaced whole and atomically by one
``nft -f -`` per sync (``table {}`` + ``delete table`` + the new table in one
transaction), so the kernel never sees a half-programmed Service and no rule of anyone
else is ever touched.

Traffic shape:

- ``prerouting`` (from the bridge only) and ``output`` (the host) jump to ``services``,
  which maps ``daddr . l4proto . dport`` to one chain per Service port (a ClusterIP
  port, or a NodePort on the bridge's gateway address).
- Before that dispatch, ``services`` maps the ClusterIP:ports that mesh routing serves
  at L7 (a VirtualService names the Service) to one ``l7-N`` chain each, which DNATs to
  the L7 listener on the bridge's gateway address. DNAT to a local address keeps the
  pod's source address (the L7 routes by it) and conntrack un-NATs the replies, so
  nothing is masqueraded.
- A service chain picks an endpoint chain with ``numgen random`` (after ClientIP
  affinity sets, when ``sessionAffinity: ClientIP``); an endpoint chain marks hairpin
  traffic (a pod reaching itself) and DNATs. Marked packets are masqueraded in
  ``postrouting``, else the reply would bypass conntrack and the connection stall.
- Whatever still heads for the service CIDR after DNAT has no Ready endpoint: it is
  rejected (as kube-proxy does), never forwarded out of the host. Pod traffic leaving
  through any interface but the bridge is dropped unless ``egress`` is enabled, in which
  case it is masqueraded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MASQUERADE_MARK", "NatService", "apply_ruleset", "delete_table", "render"]

MASQUERADE_MARK = 0x4000  # kube-proxy's bit for "masquerade this packet"

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class NatService:
    """One Service port: its frontends and its Ready backends."""

    frontends: tuple[Addr, ...]  # (ip, port)
    protocol: str  # tcp, udp or sctp
    backends: tuple[Addr, ...]
    affinity_timeout: int | None = None


def render(table: str, *, bridge: str, pod_cidr: str, service_cidr: str,
           services: list[NatService], egress: bool = False,
           redirects: Sequence[tuple[Addr, Addr]] = ()) -> str:
    """The whole-table replacement script for ``nft -f -``. ``redirects`` are
    (ClusterIP:port, L7 listener) pairs, TCP, taking precedence over ``services``."""
    mark = f"0x{MASQUERADE_MARK:x}"
    out: list[str] = [f"table ip {table} {{}}", f"delete table ip {table}",
                      f"table ip {table} {{"]
    dispatch: list[str] = []
    body: list[str] = []
    to_l7: list[str] = []
    for i, ((ip, port), (lip, lport)) in enumerate(sorted(redirects)):
        to_l7.append(f"{ip} . tcp . {port} : goto l7-{i}")
        body += [f"  chain l7-{i} {{", f"    meta l4proto tcp dnat to {lip}:{lport}", "  }"]
    for i, svc in enumerate(services):
        if not svc.backends:
            continue
        chain = f"svc-{i}"
        for ip, port in svc.frontends:
            dispatch.append(f"{ip} . {svc.protocol} . {port} : goto {chain}")
        eps = [f"ep-{i}-{j}" for j in range(len(svc.backends))]
        lines: list[str] = []
        if svc.affinity_timeout:
            for ep in eps:
                body.append(f"  set aff-{ep} {{ type ipv4_addr; flags dynamic,timeout; "
                            f"timeout {svc.affinity_timeout}s; }}")
                lines.append(f"    ip saddr @aff-{ep} goto {ep}")
        if len(eps) == 1:
            lines.append(f"    goto {eps[0]}")
        else:
            vmap = ", ".join(f"{j} : goto {ep}" for j, ep in enumerate(eps))
            lines.append(f"    numgen random mod {len(eps)} vmap {{ {vmap} }}")
        body.append(f"  chain {chain} {{")
        body.extend(lines)
        body.append("  }")
        for ep, (bip, bport) in zip(eps, svc.backends, strict=True):
            body.append(f"  chain {ep} {{")
            body.append(f"    ip saddr {bip} meta mark set meta mark or {mark}")
            if svc.affinity_timeout:
                body.append(f"    update @aff-{ep} {{ ip saddr }}")
            body.append(f"    meta l4proto {svc.protocol} dnat to {bip}:{bport}")
            body.append("  }")
    out.append("  chain services {")
    if to_l7:
        out.append("    ip daddr . meta l4proto . th dport vmap { " + ", ".join(to_l7) + " }")
    if dispatch:
        out.append("    ip daddr . meta l4proto . th dport vmap { "
                   + ", ".join(dispatch) + " }")
    out.append("  }")
    out += [
        "  chain prerouting {",
        "    type nat hook prerouting priority -100; policy accept;",
        f'    iifname "{bridge}" jump services',
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        "    jump services",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority 100; policy accept;",
        f"    meta mark and {mark} == {mark} masquerade",
    ]
    if egress:
        out.append(f'    ip saddr {pod_cidr} oifname != "{bridge}" masquerade')
    out += [
        "  }",
        "  chain forward {",
        "    type filter hook forward priority 0; policy accept;",
        f"    ip daddr {service_cidr} reject",
    ]
    if not egress:
        out.append(f'    ip saddr {pod_cidr} oifname != "{bridge}" drop')
    out += [
        "  }",
        "  chain host-output {",
        "    type filter hook output priority 0; policy accept;",
        f"    ip daddr {service_cidr} reject",
        "  }",
    ]
    out.extend(body)
    out.append("}")
    return "\n".join(out) + "\n"


async def _nft(args: list[str], stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "nft", *args, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return (proc.returncode or 0), err.decode(errors="replace").strip()


async def apply_ruleset(script: str) -> None:
    """Load ``script`` in one transaction; RuntimeError with nft's message on failure."""
    rc, err = await _nft(["-f", "-"], script)
    if rc != 0:
        raise RuntimeError(f"nft rejected the service rules: {err}")


async def delete_table(table: str) -> bool:
    """Delete our table; False when it did not exist."""
    rc, err = await _nft(["delete", "table", "ip", table])
    if rc != 0 and "No such file" not in err:
        raise RuntimeError(f"nft delete table ip {table}: {err}")
    return rc == 0
