"""prebake.restore in a real Jupyter kernel (nbclient + ipykernel), as a notebook user sees it:
errors as one line naming the Python argument, the summary shown without being the last line, and
a saved notebook that holds the summary rather than a progress bar."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from prebake.lock import LockedPack, write_lock
from prebake.runtime import current_platform

from ..conftest import make_awkward_tree, pack

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, *cells: str) -> list[dict]:
    """Execute the cells in a fresh kernel, errors allowed; the saved outputs of each cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    return [cell.outputs for cell in nbformat.read(path, as_version=4).cells]


def _texts(outputs: list[dict]) -> list[str]:
    return ["".join(o.get("text", "")) + o.get("data", {}).get("text/plain", "") for o in outputs if o.output_type != "error"]


def _error(outputs: list[dict]) -> dict:
    [error] = [o for o in outputs if o.output_type == "error"]
    return error


def test_errors_are_one_line_naming_the_python_argument(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src", big_file_size=200_000)
    elsewhere = dataclasses.replace(current_platform(with_cuda=False), python="2.7")
    pack(src, tmp_path / "other", platform=elsewhere)
    manifest = pack(src, tmp_path / "split", part_size=20_000)
    assert len(manifest.parts) >= 3
    corrupt = tmp_path / "split" / manifest.parts[1].name
    corrupt.write_bytes(corrupt.read_bytes()[:-100] + b"\0" * 100)

    mismatch, missing_lock, worker_failure = _run(
        tmp_path,
        f"import prebake\nprebake.restore({str(tmp_path / 'other')!r}, root={str(tmp_path / 'r1')!r})",
        "import prebake\nprebake.restore('prebake.lock')",
        # Parts run in worker processes: the failing worker's remote traceback must not show.
        f"import prebake\nprebake.restore({str(tmp_path / 'split')!r}, root={str(tmp_path / 'r2')!r}, retries=0)",
    )
    error = _error(mismatch)
    assert error.ename == "PlatformMismatch"
    assert len(error.traceback) == 1 and "\n" not in error.traceback[0]
    assert "pass force=True" in error.traceback[0] and "--force" not in error.traceback[0]

    error = _error(missing_lock)
    assert error.ename == "UsageError" and len(error.traceback) == 1
    assert "prebake.restore('https://.../prebake.lock')" in error.traceback[0]

    error = _error(worker_failure)
    assert error.ename == "IntegrityError" and len(error.traceback) == 1
    assert manifest.parts[1].name in error.traceback[0]
    assert "Traceback" not in error.traceback[0] and "RemoteTraceback" not in error.evalue


def test_the_summary_shows_when_not_last_and_the_saved_notebook_holds_no_bar(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src", big_file_size=3_000_000)
    pack(src, tmp_path / "pack", part_size=500_000)
    root = tmp_path / "root"
    other = pack(make_awkward_tree(tmp_path / "src2"), tmp_path / "other", target="/opt/other", name="other",
                 part_size=20_000)
    broken = tmp_path / "other" / other.parts[-1].name
    broken.write_bytes(broken.read_bytes()[:-10] + b"\0" * 10)
    write_lock(tmp_path / "two.lock", [LockedPack("fresh", "1.0", pack(make_awkward_tree(tmp_path / "src3"),
                                                                          tmp_path / "fresh", target="/opt/fresh",
                                                                          name="fresh").digest, (str(tmp_path / "fresh"),)),
                                       LockedPack("other", "1.0", other.digest, (str(tmp_path / "other"),))])
    first, again, later, partly = _run(
        tmp_path,
        f"import prebake\nresults = prebake.restore({str(tmp_path / 'pack')!r}, root={str(root)!r}, progress=True)\nx = 1",
        f"prebake.restore({str(tmp_path / 'pack')!r}, root={str(root)!r})",
        "results",
        f"prebake.restore({str(tmp_path / 'two.lock')!r}, root={str(tmp_path / 'r3')!r}, retries=0)",
    )
    texts = ["".join(o.get("text", "")) + o.get("data", {}).get("text/plain", "") for o in first]
    assert [t for t in texts if t.strip()] == [t for t in texts if t.startswith("restored app 1.0: ")], texts
    [summary] = [t for t in texts if t.strip()]
    assert summary.count("\n") == 0 and " files, " in summary and " MiB in " in summary
    assert "#" not in "".join(texts) and "%" not in "".join(texts)
    # The call as a cell's last line: its value does not repeat the line already shown.
    shown = ["".join(o.get("text", "")) + o.get("data", {}).get("text/plain", "") for o in again]
    assert [t.strip() for t in shown if t.strip()] == ["app 1.0 is already restored; nothing to do"]
    # Shown again in a later cell, the results print; a lock that fails half-way still says what it restored.
    assert [t for t in _texts(later) if t.strip()] == [summary + "\n"]
    assert _texts(partly)[0].startswith("restored fresh 1.0: ") and _error(partly).ename == "IntegrityError"
