"""The report notebook: committed without outputs, and it runs from top to bottom."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO_ROOT / "notebooks" / "cors-report.ipynb"


def test_committed_notebook_has_no_outputs() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs_and_draws(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    sample = REPO_ROOT / "samples" / "chromium-session.har"
    if not sample.is_file():
        # The notebook falls back to this corpus capture itself; the fixture proves it is there.
        assert (corpus / "har" / "webpagetest-2.17-aftonbladet-cors-preflights.har").is_file()
    # The kernel is a separate process: it must find this checkout's corsflow.
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    monkeypatch.delenv("CORSFLOW_CAPTURE", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # timeline, overhead, verdicts
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("CORS analysis" in h for h in html)  # the analysis card
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "preflights took" in text and "wrote" in text
