"""The bridge network's NAT table as text (no root): what ``nft -f -`` is given."""

from __future__ import annotations

from orchestra.net._bridge_nft import NatService, render


def _render(**kw: object) -> str:
    return render("orchestra-t", bridge="orc-t", pod_cidr="10.88.0.0/17",
                  service_cidr="10.88.128.0/17",
                  services=[NatService((("10.88.128.5", 9080),), "tcp",
                                       (("10.88.0.7", 8080), ("10.88.0.8", 8080)))],
                  **kw)  # type: ignore[arg-type]


def test_a_redirect_to_l7_is_dispatched_before_the_services_and_not_masqueraded() -> None:
    text = _render(redirects=[(("10.88.128.5", 9080), ("10.88.0.1", 41234))])
    lines = [line.strip() for line in text.splitlines()]
    services = lines[lines.index("chain services {"):]
    services = services[:services.index("}")]
    assert services == [
        "chain services {",
        "ip daddr . meta l4proto . th dport vmap { 10.88.128.5 . tcp . 9080 : goto l7-0 }",
        "ip daddr . meta l4proto . th dport vmap { 10.88.128.5 . tcp . 9080 : goto svc-0 }",
    ]
    chain = lines[lines.index("chain l7-0 {"):]
    assert chain[:3] == ["chain l7-0 {", "meta l4proto tcp dnat to 10.88.0.1:41234", "}"]
    assert "jump l7-0" not in text and text.count("mark set") == 2  # endpoints' only
    # pods (from the bridge) and the host (output) both reach the dispatch
    assert 'iifname "orc-t" jump services' in lines and "jump services" in lines


def test_without_redirects_the_table_has_no_l7_chain() -> None:
    text = _render()
    assert "l7-" not in text and "goto svc-0" in text
    assert _render(redirects=[]) == text


def test_redirects_are_rendered_in_a_stable_order() -> None:
    a = (("10.88.128.9", 80), ("10.88.0.1", 40001))
    b = (("10.88.128.5", 80), ("10.88.0.1", 40002))
    text = _render(redirects=[a, b])
    assert text == _render(redirects=[b, a])
    assert ("10.88.128.5 . tcp . 80 : goto l7-0, 10.88.128.9 . tcp . 80 : goto l7-1"
            in text)
    assert "dnat to 10.88.0.1:40002" in text.split("chain l7-0 {")[1].split("}")[0]
