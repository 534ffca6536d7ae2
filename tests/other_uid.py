"""A Python and a non-editable copy of the project that any uid can run, for the tests that run
`signalos` as another user (tests/daemon_process.py: `run_cli(..., uid=)`).

Why it exists: the suite runs from a checkout whose `.venv` holds an editable install, and the
venv's interpreter is a symlink to the base Python. Under a private parent (`mktemp -d` makes
0700 directories; so is /root, where pyenv keeps its Pythons) uid 65534 can read neither the
checkout, nor the venv's site-packages, nor the base Python's standard library and libpython.
So, once per test session and only when a test asks for it, this module copies into a fresh
directory under the system's temporary directory (mode 0755, every parent traversable):

- the base interpreter, its shared libpython (when it has one) and its standard library (without
  its own site-packages and test suites), run with PYTHONHOME pointing at the copy;
- `signalosd` and `signalos_cli` as they are in the checkout, and the files of every runtime
  dependency (pyproject's `dependencies`, transitively) as the main venv's installer recorded
  them, on PYTHONPATH. Nothing is downloaded or built, and the test-only and dev-only packages
  are absent, as in a non-editable install of the checkout.

Copying takes a second or two; the directory is removed when the test process exits.
"""

from __future__ import annotations

import atexit
import compileall
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent  # the checkout
PACKAGES = ("signalosd", "signalos_cli")
# The base Python's own packages, and parts of the standard library no CLI run needs (its
# biggest directories).
STDLIB_SKIP = frozenset(
    [
        "site-packages",
        "dist-packages",
        "test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "lib2to3",
    ]
)


@dataclass(frozen=True)
class OtherUidPython:
    root: Path  # the copy's directory
    python: Path  # its interpreter: run `python -m signalos_cli …` with `env` added
    env: dict[str, str]


_shared: OtherUidPython | None = None


def other_uid_python(as_other: list[str]) -> OtherUidPython:
    """The session's copy, made on first use and checked by running it with the `as_other`
    prefix (setpriv …)."""
    global _shared
    if _shared is None:
        root = Path(tempfile.mkdtemp(prefix="signalos-other-uid-", dir=_public_tmp()))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _shared = _check(stage(root), as_other)
    return _shared


def stage(root: Path) -> OtherUidPython:
    home = root / "python"
    python = _copy_interpreter(home)
    site = root / "site"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, site / package, ignore=_no_pycache)
    for dist in _runtime_distributions():
        _copy_distribution(dist, site)
    compileall.compile_dir(site, quiet=2)  # the other uid cannot write __pycache__ itself
    _make_world_readable(root)
    env = {"PYTHONHOME": str(home), "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    if (home / "lib" / _libpython()).exists():
        env["LD_LIBRARY_PATH"] = str(home / "lib")
    return OtherUidPython(root, python, env)


def _public_tmp() -> str:
    """The temporary directory, if every directory above it lets others through, else /tmp."""
    for candidate in (tempfile.gettempdir(), "/tmp"):
        path = Path(candidate).resolve()
        if all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents)):
            return str(path)
    raise RuntimeError("no temporary directory that other users can traverse")


def _copy_interpreter(home: Path) -> Path:
    base = Path(sys.base_prefix)
    stdlib = Path(sysconfig.get_path("stdlib"))
    exe = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))

    def skip(directory: str, names: list[str]) -> list[str]:
        if Path(directory) != stdlib:
            return []
        return [n for n in names if n in STDLIB_SKIP or n.startswith("config-")]

    shutil.copytree(
        stdlib, home / stdlib.relative_to(base), ignore=skip, ignore_dangling_symlinks=True
    )
    (home / "bin").mkdir()
    python = home / "bin" / exe.name
    shutil.copy2(exe, python)
    libdir, libpython = sysconfig.get_config_var("LIBDIR"), _libpython()
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and libpython:
        shared = Path(libdir) / libpython
        if shared.exists():
            (home / "lib").mkdir(exist_ok=True)
            shutil.copy2(shared, home / "lib" / libpython)
    return python


def _libpython() -> str:
    return str(sysconfig.get_config_var("INSTSONAME") or "")


def _runtime_distributions() -> list[metadata.Distribution]:
    """The installed distributions the project needs at run time, dependencies included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(spec) for spec in project["dependencies"]]
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        if name in found or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        dist = metadata.distribution(name)
        found[name] = dist
        wanted += [Requirement(spec) for spec in dist.requires or []]
    return list(found.values())


def _copy_distribution(dist: metadata.Distribution, site: Path) -> None:
    files = dist.files
    if files is None:
        raise RuntimeError(f"{dist.metadata['Name']} has no RECORD: cannot copy it")
    for file in files:
        if file.parts[0] == "..":  # console scripts beside the venv's bin/
            continue
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _no_pycache(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


def _make_world_readable(root: Path) -> None:
    """Whatever the umask and the modes of the sources: readable by all, like an install."""
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, 0o755 if mode & stat.S_IXUSR else 0o644)


def _check(copy: OtherUidPython, as_other: list[str]) -> OtherUidPython:
    """Fail clearly, once, when the copy does not start as the other uid."""
    done = subprocess.run(
        [*as_other, str(copy.python), "-m", "signalos_cli", "--version"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **copy.env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the copy of Python in {copy.root} does not run signalos as "
            f"{' '.join(as_other)}:\n{done.stdout}{done.stderr}"
        )
    return copy
