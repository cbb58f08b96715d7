"""The item bank owns ``ItemParameter`` (issue 10, item 7): it is written only through
:func:`itembank.parameters.supersede_parameters` and read through
:func:`itembank.parameters.current_parameters`, so no other package names the model or its
table, and the psychometrician's workspace cannot write a row of its own."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Every application package but the owner; migrations may name the table they create.
OTHERS = ("assessment", "proctoring", "credentials", "psychometrics", "microcred")


def _mentions(path: Path, root: Path = ROOT) -> list[str]:
    where = path.relative_to(root)
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "ItemParameter":
            found.append(f"{where}:{node.lineno} uses ItemParameter")
        elif isinstance(node, ast.Attribute) and node.attr == "ItemParameter":
            found.append(f"{where}:{node.lineno} uses .ItemParameter")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "ItemParameter":
                    found.append(f"{where}:{node.lineno} imports ItemParameter")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and "item_parameters" in node.value):
            found.append(f"{where}:{node.lineno} names the item_parameters table")
    return found


def test_only_the_item_bank_touches_item_parameter_rows():
    files = [
        path
        for package in OTHERS
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]
    assert any(p.parts[-2:] == ("psych", "runs.py") for p in files)  # the walk sees the workspace
    assert [m for path in files for m in _mentions(path)] == []


def test_the_check_sees_a_direct_write(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "from itembank import models\n"
        "def write(session):\n"
        "    session.add(models.ItemParameter(item_version_id=1, model='2pl', a=1.0))\n"
        "    session.execute(text('DELETE FROM item_parameters'))\n"
    )
    assert len(_mentions(sneaky, tmp_path)) == 2
