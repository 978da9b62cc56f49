"""examples/notebook.ipynb runs in a Jupyter kernel (nbclient + ipykernel), and what it
displays is HTML: the cluster's tables, an object's row, a table, describe's <pre>."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install nbclient ipykernel (dev)")
nbclient = pytest.importorskip("nbclient", reason="pip install nbclient ipykernel (dev)")
pytest.importorskip("ipykernel", reason="pip install nbclient ipykernel (dev)")

ROOT = Path(__file__).resolve().parents[2]


def html_of(cell: object) -> str:
    for out in cell["outputs"]:  # type: ignore[index]
        data = out.get("data", {})
        if "text/html" in data:
            return str(data["text/html"])
    raise AssertionError(f"no HTML output: {cell['outputs']}")  # type: ignore[index]


def test_the_example_notebook_runs_and_displays_html(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    env_path = os.environ.get("PYTHONPATH", "")
    src = str(ROOT / "src")
    if src not in env_path.split(os.pathsep):  # the kernel imports this checkout
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (src, env_path) if p))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) == 6 and len(nb.cells) == 12  # each code cell after its explanation
    for cell in code:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, errors
    cluster_html = html_of(code[1])
    assert "<h4>Pods</h4>" in cluster_html and "<h4>Services</h4>" in cluster_html
    assert cluster_html.count("Running") == 2
    row = html_of(code[2])
    assert "<th style=\"text-align:left\">UP-TO-DATE</th>" in row and ">2/2<" in row
    table = html_of(code[3])
    assert table.count("<tr>") == 3 and ">Running<" in table
    described = html_of(code[4])
    assert described.startswith("<pre>Name:") and "web" in described
