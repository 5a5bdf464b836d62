"""The walkthrough notebook runs top to bottom in a fresh kernel, from the
notebooks/ folder as a user would, and shows what it promises: discovery, a
detection, two figures and a catalogue query."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "eowatch-walkthrough.ipynb"


def _ensure_python3_kernel() -> None:
    """The venv's ipykernel provides "python3"; register its spec in the venv when missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True)


def test_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 6
    assert all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs_and_shows_its_results() -> None:
    from nbclient import NotebookClient

    _ensure_python3_kernel()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Raises CellExecutionError, naming the cell, if any cell fails.
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # fmt: skip
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "pair: catalogue-imgs_1 -> catalogue-imgs_2 (342 days)" in text
    item_id = re.search(r"item id: (s2-imad_20161130_20171107_\w+)", text)
    assert item_id, text
    assert "status: ok" in text
    assert f"matched: 1 ['{item_id.group(1)}']" in text
    assert "matched elsewhere: 0 | matched in 2015: 0" in text
    polygons = int(re.search(r"(\d+) polygons; first:", text).group(1))  # type: ignore[union-attr]
    assert polygons > 0
    images = [base64.b64decode(o.data["image/png"]) for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2 and all(img.startswith(b"\x89PNG") and len(img) > 10_000 for img in images)
    work = Path(re.search(r"removed (\S+)", text).group(1))  # type: ignore[union-attr]
    assert not work.exists()  # the notebook cleans up after itself
