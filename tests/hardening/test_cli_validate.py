"""``orchestra validate`` judges hostile files by the same rules as ``load``: every
document reported, nothing expanded, any bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra._cli import main
from tests.hardening.test_hostile_inputs import BOMB_8


def _validate(tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
              ) -> tuple[int, str]:
    (tmp_path / "x.yaml").write_bytes(content)
    code = main(["validate", "-f", str(tmp_path / "x.yaml")])
    return code, capsys.readouterr().out


def test_an_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _validate(tmp_path, BOMB_8.encode(), capsys)
    assert code == 1 and "excessive aliasing" in out and len(out) < 4096


def test_bytes_that_are_not_utf8_are_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _validate(tmp_path, b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff}\n",
                          capsys)
    assert code == 1 and "invalid leading UTF-8 octet" in out


def test_every_document_is_judged_duplicate_keys_included(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n")
    code, out = _validate(tmp_path, text.encode(), capsys)
    assert code == 1
    assert 'duplicate field "metadata.name"' in out
    assert 'document 2 (ConfigMap "Bad_Name") is invalid' in out
    assert out.strip().endswith("1 objects valid")
