"""NetworkPolicy in the kernel for the bridge network: a table of orchestra's own.

``table ip <name>``, apart from the Service NAT table (which is replaced whole on every
Service sync): base chains on the ``forward`` hook (pod to pod, pod to outside) and the
``input`` hook (pod to the host: the cluster DNS on the gateway) accept established and
related packets (replies), then send a packet from a pod through the verdict map
``egress`` (pod address -> its chain) and a packet to a pod through ``ingress``. A pod's
chain ``return``s what its policies allow and drops the rest; a pod that no policy
isolates has no element, so its traffic passes. :meth:`PolicyTable.script` emits only
the difference from what is loaded: new chains and elements, ``flush chain`` and new
rules for a pod whose rules changed, deletions for pods no longer isolated, in one
``nft -f -`` transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PolicyTable"]

Rules = tuple[tuple[str, ...] | None, tuple[str, ...] | None]


def _chain(direction: str, ip: str) -> str:
    return f"{direction}-{ip.replace('.', '-')}"


class PolicyTable:
    def __init__(self, table: str, bridge: str) -> None:
        self.table = table
        self.bridge = bridge
        self.loaded: dict[str, Rules] = {}
        self.created = False

    def _base(self) -> list[str]:
        t, br = self.table, self.bridge
        return [
            f"table ip {t} {{}}", f"delete table ip {t}",
            f"table ip {t} {{",
            "  map ingress { type ipv4_addr : verdict; }",
            "  map egress { type ipv4_addr : verdict; }",
            "  chain forward {",
            "    type filter hook forward priority 10; policy accept;",
            "    ct state established,related accept",
            f'    iifname "{br}" ip saddr vmap @egress',
            f'    oifname "{br}" ip daddr vmap @ingress',
            "  }",
            "  chain input {",
            "    type filter hook input priority 10; policy accept;",
            f'    iifname "{br}" ct state established,related accept',
            f'    iifname "{br}" ip saddr vmap @egress',
            "  }",
            "}",
        ]

    def script(self, wanted: Mapping[str, Rules]) -> str | None:
        """The transaction that makes the table hold ``wanted``; None when nothing
        changes. Call :meth:`applied` once it has been loaded."""
        t = self.table
        lines: list[str] = [] if self.created else self._base()
        for ip, rules in wanted.items():
            old = self.loaded.get(ip, (None, None))
            for i, direction in enumerate(("ingress", "egress")):
                want, have = rules[i], old[i]
                if want == have:
                    continue
                chain = _chain(direction, ip)
                if have is None:
                    lines.append(f"add chain ip {t} {chain}")
                else:
                    lines.append(f"flush chain ip {t} {chain}")
                if want is None:
                    lines.append(f"delete element ip {t} {direction} {{ {ip} }}")
                    lines.append(f"delete chain ip {t} {chain}")
                    continue
                lines += [f"add rule ip {t} {chain} {rule}" for rule in want]
                lines.append(f"add rule ip {t} {chain} drop")
                if have is None:
                    lines.append(f"add element ip {t} {direction} {{ {ip} : jump {chain} }}")
        for ip, old in self.loaded.items():
            if ip in wanted:
                continue
            for i, direction in enumerate(("ingress", "egress")):
                if old[i] is not None:
                    lines.append(f"delete element ip {t} {direction} {{ {ip} }}")
                    lines.append(f"flush chain ip {t} {_chain(direction, ip)}")
                    lines.append(f"delete chain ip {t} {_chain(direction, ip)}")
        if not lines:
            return None
        return "\n".join(lines) + "\n"

    def applied(self, wanted: Mapping[str, Rules]) -> None:
        self.loaded = dict(wanted)
        self.created = True
