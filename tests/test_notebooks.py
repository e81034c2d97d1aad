"""The analysts' notebooks run top to bottom against the embedded sample, so they cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel")
nbclient = pytest.importorskip("nbclient", reason="pip install nbformat nbclient ipykernel")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.slow


def test_there_are_notebooks_for_each_analyst_task() -> None:
    names = " ".join(p.name for p in NOTEBOOKS)
    for topic in ("open_the_twin", "by_grid", "void_risk", "tower", "api"):
        assert topic in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, sample_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel inherits this environment: the sample twin, and no service URL (05 starts its own server)
    monkeypatch.setenv("TWIN_SAMPLE_DIR", str(sample_path.parent))
    monkeypatch.delenv("TWIN_API_URL", raising=False)
    monkeypatch.delenv("TWIN_GPKG_PATH", raising=False)
    monkeypatch.delenv("TWIN_DATABASE_URL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), \
        f"{path.name} is committed with outputs; clear them"
    client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent.parent)}})
    client.execute()
    errors = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
