"""describe's layout: Go's text/tabwriter rules, which kubectl describe prints with."""

from __future__ import annotations

from orchestra.present._tabwriter import align


def test_a_block_of_lines_aligns_to_its_widest_cell_plus_two() -> None:
    assert align(["Name:\tweb", "Service Account:\tdefault", "Labels:\tapp=web",
                  "\tpod-template-hash=abc"]) == [
        "Name:             web",
        "Service Account:  default",
        "Labels:           app=web",
        "                  pod-template-hash=abc",
    ]


def test_a_line_without_a_tab_ends_the_block() -> None:
    assert align(["Name:\tweb", "Containers:", "  main:", "    Image:\tbusybox",
                  "    Restart Count:\t0"]) == [
        "Name:  web",
        "Containers:",
        "  main:",
        "    Image:          busybox",
        "    Restart Count:  0",
    ]


def test_columns_align_within_the_block_of_the_column_before() -> None:
    """A table's columns; the text after a line's last tab is never padded, and a later
    column's block ends where fewer cells follow."""
    assert align(["  Type\tReason\tMessage", "  ----\t------\t-------",
                  "  Normal\tScheduled\tassigned to node-1", "Volumes:\t<none>",
                  "QoS Class:\tBestEffort"]) == [
        "  Type      Reason     Message",
        "  ----      ------     -------",
        "  Normal    Scheduled  assigned to node-1",
        "Volumes:    <none>",
        "QoS Class:  BestEffort",
    ]


def test_lines_without_tabs_pass_unchanged_but_for_trailing_spaces() -> None:
    assert align(["Events:", "  plain text  ", ""]) == ["Events:", "  plain text", ""]
