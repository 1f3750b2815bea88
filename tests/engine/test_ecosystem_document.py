"""The ecosystem matrix in the documents: ``python -m pytest_futures_plugin.ecosystem document``
(what ``nox -s ecosystem`` runs) rewrites the rows of the backends it ran and keeps the others."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from pytest_futures_plugin import ecosystem

if TYPE_CHECKING:
    from pathlib import Path


def _report(backend: str, cells: dict[str, tuple[str, list[str]]], **meta: Any) -> dict[str, Any]:
    """A ``--futures-report`` JSON with one test per cell."""
    return {
        "areas": list(cells),
        "meta": meta,
        "cells": [
            {
                "area": area,
                "backend": backend,
                "status": status,
                "issues": issues,
                "counts": {status: 1},
            }
            for area, (status, issues) in cells.items()
        ],
    }


def _table(path: Path) -> list[list[str]]:
    text = path.read_text()
    block = text[text.index(ecosystem.BEGIN) : text.index(ecosystem.END)]
    return [
        [part.strip() for part in line.strip("|").split("|")]
        for line in block.splitlines()
        if line.startswith("|")
    ]


def test_a_run_rewrites_its_backends_rows_and_keeps_the_others(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n{ecosystem.BEGIN}\n{ecosystem.END}\n\nafter\n")
    first = _report("pool-a", {"map": ("PASS", []), "waiting": ("KNOWN-BUG", ["gh-92001"])})
    other = _report("pool-b", {"map": ("FAIL", [])}, wall_seconds=61.5, load_average="load 3.2")
    ecosystem.update_document(doc, [first, other])
    again = _report("pool-a", {"map": ("SKIP", []), "callbacks": ("PASS", [])})
    ecosystem.update_document(doc, [again])
    header, separator, *rows = _table(doc)
    assert header == [
        "backend",
        "version",
        "map",
        "waiting",
        "callbacks",
        "PASS/KNOWN-BUG/DEVIATION/SKIP/FAIL",
        "wall (load)",
    ]
    assert set(separator) == {"---"}
    assert rows == [
        ["pool-a", "—", "SKIP", "—", "PASS", "1 / 0 / 0 / 1 / 0", "—"],
        ["pool-b", "—", "FAIL", "—", "—", "0 / 0 / 0 / 0 / 1", "62 s (load 3.2)"],
    ]
    assert doc.read_text().startswith("# Title\n\n")
    assert doc.read_text().endswith("\n\nafter\n")


def test_a_bug_the_specs_found_is_marked_found_and_a_cpython_one_by_its_issue(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"{ecosystem.BEGIN}\n{ecosystem.END}\n")
    found = "pytest_futures_plugin.upstream.loky_unpicklable_exception"
    report = _report("loky", {"exceptions": ("KNOWN-BUG", ["gh-132063", found])})
    path = tmp_path / "loky.json"
    path.write_text(json.dumps(report))
    assert ecosystem.main(["document", str(doc), str(path)]) == 0
    (row,) = _table(doc)[2:]
    assert row[0] == "loky"
    assert row[2] == "KNOWN-BUG gh-132063, **found** loky_unpicklable_exception"


def test_a_document_without_the_markers_is_an_error_naming_it(tmp_path: Path) -> None:
    doc = tmp_path / "plain.md"
    doc.write_text("no matrix here\n")
    with pytest.raises(ValueError, match=r"plain\.md"):
        ecosystem.update_document(doc, [_report("pool-a", {"map": ("PASS", [])})])
    assert doc.read_text() == "no matrix here\n"
