"""Nox sessions: the test suite on every supported Python, the specs per backend, lint,
type-check and coverage.

Run ``nox -l`` to list them, ``nox`` for the defaults, ``nox -s tests-3.9 -- -k cancel`` to pass
arguments through to pytest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nox

nox.needs_version = ">=2025.10.14"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
# A missing interpreter is an error on CI (nox's default there) and a skip locally; never
# fetch one from the network.
nox.options.download_python = "never"

PYPROJECT = nox.project.load_toml("pyproject.toml")
ALL_PYTHONS = nox.project.python_versions(PYPROJECT)
# The tools run on one interpreter; mypy still checks 3.9 semantics (python_version in
# pyproject.toml).
TOOLS_PYTHON = "3.11"
# mypy checks 3.9 code on 3.9: there pip installs pytest and hypothesis releases that still
# parse as 3.9 (newer ones use `match`, which mypy rejects under python_version 3.9).
TYPECHECK_PYTHON = "3.9"


def _pyenv_root() -> Path:
    """Where pyenv keeps its interpreters: $PYENV_ROOT, else ``pyenv root``, else ~/.pyenv."""
    if root := os.environ.get("PYENV_ROOT"):
        return Path(root)
    if pyenv := shutil.which("pyenv"):
        result = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return Path.home() / ".pyenv"


def _release(path: Path) -> tuple[int, ...]:
    """The version of a pyenv install from its directory name (``.../3.9.18/bin/python3.9``)."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))


def _pyenv_bin_dirs(versions: list[str]) -> list[str]:
    """The bin directory of the newest pyenv install of each X.Y in *versions*, if any."""
    root = _pyenv_root() / "versions"
    found = []
    for version in versions:
        candidates = sorted(root.glob(f"{version}.*/bin/python{version}"), key=_release)
        if candidates:
            found.append(str(candidates[-1].parent))
    return found


# pyenv's shims start only the active version, so a `python3.9` on PATH may be a shim that
# refuses to run. nox looks for `pythonX.Y` on PATH and skips those that fail; appending each
# installed version's bin directory lets it find the real interpreter without shadowing
# anything that already works.
os.environ["PATH"] = os.pathsep.join([os.environ["PATH"], *_pyenv_bin_dirs(ALL_PYTHONS)])


@nox.session(python=ALL_PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite; arguments after ``--`` go to pytest."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


SPEC_BACKENDS = ["thread", "process", "stdlib-thread", "stdlib-process"]


@nox.session(python=ALL_PYTHONS)
@nox.parametrize("backend", SPEC_BACKENDS)
def specs(session: nox.Session, backend: str) -> None:
    """Run the specification against one backend (profile: $HYPOTHESIS_PROFILE, default ci)."""
    session.install("-e", ".[test]")
    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    session.run(
        "pytest",
        "specs",
        f"--executor={backend}",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": profile},
    )


ECOSYSTEM_DIR = Path("ecosystem-report")
"""Where the ``ecosystem`` session writes each backend's report and the merged matrix."""


ECOSYSTEM_DOCUMENTS = ("docs/ecosystem.md", "README.md")
"""The documents whose generated matrix the ``ecosystem`` session rewrites (its backends' rows)."""


def _stamp(report: Path, wall: float) -> None:
    """Add the run's wall time and the load average at its end to the report's meta."""
    if not report.exists():  # nox --install-only, or pytest died before writing it
        return
    data = json.loads(report.read_text(encoding="utf-8"))
    data.setdefault("meta", {}).update(
        wall_seconds=round(wall, 1), load_average=f"load {os.getloadavg()[0]:.1f}"
    )
    report.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@nox.session(python=TOOLS_PYTHON)
def ecosystem(session: nox.Session) -> None:
    """Run the specification on every installed third-party backend (loky, futurist, dask) and
    write the ecosystem matrix: ecosystem-report/matrix.json and matrix.txt, one BACKEND.json
    and BACKEND.log per backend, and their rows of the matrix in docs/ecosystem.md and the
    README. Arguments after ``--`` name the backends (default: every one whose package
    installed) and are otherwise passed to pytest (then the documents are left alone)."""
    session.install("-e", ".[test,ecosystem]")
    listed = session.run(
        "python", "-m", "pytest_futures_plugin.ecosystem", "available", silent=True
    )
    installed = str(listed or "").split()
    chosen = [arg for arg in session.posargs if arg in installed] or installed
    extra = [arg for arg in session.posargs if arg not in installed]
    if not chosen:
        session.error("no ecosystem backend is installed on this interpreter")
    ECOSYSTEM_DIR.mkdir(exist_ok=True)
    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    reports = []
    for backend in chosen:
        report = ECOSYSTEM_DIR / f"{backend}.json"
        report.unlink(missing_ok=True)
        # pytest exits 1 when a spec fails: that is a finding for the matrix, not an error
        # of the session; any other exit (usage error, interrupted, internal) still is.
        # Two xdist workers, as CI runs the suite; a `-n` among the arguments wins.
        started = time.monotonic()
        with open(ECOSYSTEM_DIR / f"{backend}.log", "w", encoding="utf-8") as log:
            session.run(
                "pytest",
                "specs",
                f"--executor={backend}",
                f"--futures-report={report}",
                "-p",
                "no:cacheprovider",
                "-n",
                "2",
                *extra,
                env={"HYPOTHESIS_PROFILE": profile},
                success_codes=[0, 1],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _stamp(report, time.monotonic() - started)
        reports.append(str(report))
    session.run(
        "python",
        "-m",
        "pytest_futures_plugin.ecosystem",
        "merge",
        str(ECOSYSTEM_DIR / "matrix.json"),
        *reports,
    )
    if not extra:  # a partial run (-k, other options) does not stand for the backend's row
        documents = ",".join(ECOSYSTEM_DOCUMENTS)
        session.run(
            "python", "-m", "pytest_futures_plugin.ecosystem", "document", documents, *reports
        )


@nox.session(python=TOOLS_PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install(*PYPROJECT["project"]["optional-dependencies"]["lint"])
    session.run("ruff", "check", *session.posargs)
    session.run("ruff", "format", "--check")


@nox.session(python=TYPECHECK_PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the packages, tests, specs and bench (as 3.9 code) and this noxfile."""
    session.install("-e", ".[typecheck]")
    session.run("mypy", *session.posargs)
    # The noxfile runs under nox's own interpreter, never on 3.9.
    session.run("mypy", "--python-version", TOOLS_PYTHON, "noxfile.py")


@nox.session(python=TOOLS_PYTHON)
def coverage(session: nox.Session) -> None:
    """Measure branch coverage of the test suite, subprocesses and pool workers included."""
    session.install("-e", ".[test]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine")
    session.run("coverage", "report")
