"""notebooks/explore.ipynb runs top to bottom against fresh demo data, and shows what the data holds.

The demo materializes 14 days from the built-in simulator into a temporary Dagster instance and data directory;
the notebook is then executed in a real Jupyter kernel (nbclient) from ``notebooks/``, as a user would run it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK = NOTEBOOKS / "explore.ipynb"
KERNEL = "python3"

# Variables run_demo() writes into os.environ, and the ones that would change what the notebook's Definitions
# see. Each is set (or removed) through monkeypatch first, so its original value comes back after the test.
DEMO_ENV = ("SMSC_LOGIN", "SMSC_PASSWORD", "SMSC_BASE_URL", "SMSC_DATA_DIR", "SMSC_API_KEY")
ISOLATE_ENV = (
    "SMSC_START_DATE",
    "SMSC_TIMEZONE",
    "SMSC_CHANNELS",
    "SMSC_LOOKBACK_DAYS",
    "SMSC_API_TIMEZONE",
    "SMSC_BUDGET_PATH",
    "SMSC_SCHEDULE_CRON",
    "SMSC_CLOCK_SPEED",
    "SMSC_CLOCK_ORIGIN",
)


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for cell in code:
        assert cell.outputs == [], f"cell {cell.get('id')} is committed with outputs"
        assert cell.execution_count is None, f"cell {cell.get('id')} is committed with an execution count"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL


def _use_this_interpreter_as_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``python3`` kernel this interpreter (the venv the package is installed in).

    ipykernel in the venv normally provides ``python3`` (``{sys.prefix}/share/jupyter/kernels``). It is missing
    in some installs, and a user-level ``python3`` spec (``~/.local/share/jupyter``) takes precedence over the
    venv's and may start another Python without this package. A private spec for ``sys.executable`` on
    ``JUPYTER_PATH`` (searched first) avoids both, without writing into the venv or the home directory.
    """
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    jupyter_dir = tmp_path / "jupyter"
    install(kernel_name=KERNEL, prefix=str(jupyter_dir))
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir / "share" / "jupyter"))
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    assert spec.argv[0] == sys.executable, spec.argv


def _parquet_rows(data_dir: Path) -> dict[str, int]:
    """Rows per partition, read from the files' own metadata (independently of DuckDB and the notebook)."""
    return {
        path.parent.name.removeprefix("date="): pq.ParquetFile(path).metadata.num_rows
        for path in sorted((data_dir / "sms_history").glob("date=*/data.parquet"))
    }


def _stdout(nb) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stdout"
    )


def _one(pattern: str, text: str) -> re.Match:
    found = list(re.finditer(pattern, text, flags=re.MULTILINE))
    assert len(found) == 1, f"expected one line matching {pattern!r} in the notebook's output:\n{text}"
    return found[0]


def test_explore_notebook_runs_on_demo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient

    from smsc_dagster.demo import run_demo

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    data_dir = tmp_path / "data"

    for name in DEMO_ENV:
        monkeypatch.setenv(name, "restored-after-the-test")
    monkeypatch.delenv("SMSC_API_KEY")
    for name in ISOLATE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("SMSC_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter_runtime"))
    _use_this_interpreter_as_kernel(tmp_path, monkeypatch)

    assert run_demo(days=14, seed=42, data_dir=str(data_dir)) == 0
    rows = _parquet_rows(data_dir)
    assert len(rows) == 14, rows
    total = sum(rows.values())
    assert total > 0

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits os.environ (DAGSTER_HOME, SMSC_DATA_DIR, MPLBACKEND, ...); any cell error raises.
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name=KERNEL, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) == 6, "expected the operator, country, daily-trend, latency, failure and settled plots"

    text = _stdout(nb)
    assert _one(r"^DATA_DIR: (.+)$", text).group(1) == str(data_dir.resolve())
    assert _one(r"^DAGSTER_HOME: (.+)$", text).group(1) == str(dagster_home)
    # The same total three ways: Parquet via DuckDB, the warehouse's view, and the rollup asset value.
    assert int(_one(r"^messages: (\d+)$", text).group(1)) == total
    assert int(_one(r"^warehouse messages: (\d+)$", text).group(1)) == total
    assert int(_one(r"^delivery_by_operator: \d+ rows covering (\d+) messages$", text).group(1)) == total
    # The simulated traffic depends on the calendar (the demo takes the last 14 days), and some days have no
    # messages: their partitions exist but are empty, so the notebook's days are the ones with rows.
    busy = sorted(day for day, n in rows.items() if n)
    days = _one(r"^days: (\d+) \((\S+) \.\. (\S+)\)$", text)
    assert (int(days.group(1)), days.group(2), days.group(3)) == (len(busy), busy[0], busy[-1])
    # One partition loaded through the Definitions: the newest day with messages, with that file's row count.
    # The marts against the Parquet files, independently of the SQL that built them.
    history = [
        r for path in sorted((data_dir / "sms_history").glob("date=*/data.parquet")) for r in pq.read_table(path).to_pylist()
    ]
    failing = [r for r in history if r["status_class"] in ("failed", "other") or (r["err"] or 0) != 0]
    assert int(_one(r"^failure_reasons messages: (\d+)$", text).group(1)) == len(failing)
    settled = _one(r"^settled partitions: (\d+) of (\d+)$", text)
    assert int(settled.group(2)) == len(rows)
    partition = _one(r"^sms_history partition (\S+): (\d+) rows$", text)
    assert partition.group(1) == busy[-1]
    assert int(partition.group(2)) == rows[busy[-1]]
