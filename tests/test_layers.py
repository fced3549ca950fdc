"""The house is drawn in layers: core (no Dagster) <- storage (no Dagster) <- orchestration (Dagster).

Each module may import its own layer (relatively) and the public package surface of the layers below it
(``smsc_dagster.core``, ``smsc_dagster.storage``), never their inner modules and never a layer above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "smsc_dagster"
LAYERS = {"core": 0, "storage": 1, "orchestration": 2}
THIRD_PARTY_FORBIDDEN = {"core": {"dagster", "duckdb", "pyarrow", "pandas"}, "storage": {"dagster"}}


def imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_downwards_and_only_public_surfaces(layer):
    problems = []
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for module, level in imports(path):
            if level > 1:
                problems.append(f"{path.name}: relative import reaching out of its layer ({'.' * level}{module})")
            if level:
                continue
            top = module.split(".")[0]
            if top in THIRD_PARTY_FORBIDDEN.get(layer, set()):
                problems.append(f"{path.name}: imports {module}")
            parts = module.split(".")
            if top == "smsc_dagster" and len(parts) > 1:
                other = parts[1]
                if other in LAYERS and LAYERS[other] > LAYERS[layer]:
                    problems.append(f"{path.name}: imports {module}, a layer above")
                if other in LAYERS and other != layer and len(parts) > 2:
                    problems.append(f"{path.name}: reaches into {module} instead of smsc_dagster.{other}")
                if other == "testing":
                    problems.append(f"{path.name}: imports the test helpers")
    assert problems == []


def test_no_module_changes_the_users_warning_filters_at_import():
    offenders = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        for node in ast.parse(p.read_text()).body
        if isinstance(node, ast.Expr) and "filterwarnings" in ast.unparse(node)
    ]
    assert offenders == []


def test_one_definition_of_the_channels_and_of_add_months():
    texts = {p.relative_to(PACKAGE).as_posix(): p.read_text() for p in PACKAGE.rglob("*.py")}
    assert [n for n, t in texts.items() if "def add_months" in t] == ["core/dates.py"]
    assert [n for n, t in texts.items() if '"email": 8' in t or "'email': 8" in t] == []
    assert [n for n, t in texts.items() if '"paging_complete"' in t] == ["storage/partitions.py"]
