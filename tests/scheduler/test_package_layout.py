"""The scheduler package's layout: each module small, with a complete ``__all__``, and no
private name taken across a module boundary (read from the source, nothing is run)."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

import pytest_futures_plugin.scheduler

PACKAGE = Path(pytest_futures_plugin.scheduler.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_LINES = 600
# The active-scheduler slot is rebound during a run: a star-import would copy its value.
NOT_EXPORTED = {"_state": {"ACTIVE"}}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _all_of(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return [ast.literal_eval(element) for element in node.value.elts]  # type: ignore[attr-defined]
    return None


def _public_top_level(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update(e.id for e in elements if isinstance(e, ast.Name))
    return {name for name in names if not name.startswith("_")}


def test_the_package_has_the_modules_of_its_concepts() -> None:
    assert {path.stem for path in MODULES} >= {
        "__init__",
        "_state",
        "policies",
        "_core",
        "_primitives",
        "_patching",
        "clock",
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_each_module_is_under_the_line_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < MAX_LINES, f"{path.name} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_each_module_lists_every_public_name_in_all(path: Path) -> None:
    tree = _tree(path)
    listed = _all_of(tree)
    assert listed is not None, f"{path.name} has no __all__"
    missing = _public_top_level(tree) - set(listed) - NOT_EXPORTED.get(path.stem, set())
    assert not missing, f"{path.name}: public names missing from __all__: {sorted(missing)}"
    assert len(listed) == len(set(listed)), f"{path.name}: __all__ lists a name twice"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_takes_a_private_name_from_another(path: Path) -> None:
    taken = []
    modules = {"_thread_dump", *(p.stem for p in MODULES)}
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and (
            node.level or "pytest_futures" in (node.module or "")
        ):
            taken += [
                f"from {node.module} import {a.name}"
                for a in node.names
                if a.name.startswith("_") and a.name not in modules
            ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
        ):
            taken.append(f"{node.value.id}.{node.attr}")
    assert not taken, f"{path.name} takes private names of other modules: {taken}"


def test_every_name_of_the_face_is_importable() -> None:
    face = pytest_futures_plugin.scheduler
    missing = [name for name in face.__all__ if not hasattr(face, name)]
    assert not missing


def test_the_face_names_its_classes_as_the_single_module_did() -> None:
    face = pytest_futures_plugin.scheduler
    assert repr(face.DeadlockError) == "<class 'pytest_futures_plugin.scheduler.DeadlockError'>"
    policy = pickle.loads(pickle.dumps(face.RandomPolicy(7)))
    assert type(policy) is face.RandomPolicy
    assert policy.seed == 7
