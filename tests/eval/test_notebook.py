"""notebooks/explore.ipynb runs top to bottom (nbclient), so it never rots."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


@pytest.mark.slow
def test_explore_notebook_runs_top_to_bottom(test_output):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, test_output / "explore.executed.ipynb")  # for people to look at

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    markdown = "".join(o["data"].get("text/markdown", "") for o in outputs if "data" in o)
    images = [o for o in outputs if "data" in o and "image/png" in o["data"]]
    assert "5 decisions," in text
    assert "56 decisions" in text  # samples + fictional dev corpus for the gold evaluation
    assert "| hit@5 |" in markdown and "lexical − hybrid" in markdown
    assert len(images) == 3
