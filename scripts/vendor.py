#!/usr/bin/env python3
"""`make vendor`: fetch the dashboard's libraries again from the npm registry, exactly.

A trading host may have no internet and the dashboard has no build step, so the exact files
npm publishes are committed under signalosd/web/static/vendor/. This script is the only way
they change: it packs each pinned package with npm (which checks the registry's integrity
hash), copies the listed files unmodified, ships each licence beside them and rewrites
manifest.json, which tests/test_vendor.py checks the committed files against.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "signalosd" / "web" / "static" / "vendor"

# name, version, files to ship (path inside the package → name under vendor/). UMD builds,
# loaded as classic scripts: the ES-module builds of preact/hooks import the bare specifier
# "preact", which only an import map resolves, and an inline import map breaks the CSP.
PACKAGES: list[tuple[str, str, dict[str, str]]] = [
    (
        "preact",
        "10.29.8",
        {"dist/preact.min.umd.js": "preact.min.umd.js", "hooks/dist/hooks.umd.js": "hooks.umd.js"},
    ),
    ("htm", "3.1.1", {"dist/htm.umd.js": "htm.umd.js"}),
    (
        "uplot",
        "1.6.32",
        {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css"},
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pack(name: str, version: str, workdir: Path) -> tuple[Path, dict[str, object]]:
    """`npm pack` verifies the tarball against the registry's integrity before writing it."""
    out = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    info = json.loads(out.stdout)[0]
    if info["version"] != version:
        raise SystemExit(f"npm gave {name}@{info['version']}, wanted {version}")
    return workdir / info["filename"], info


def main() -> int:
    if shutil.which("npm") is None:
        print(
            "make vendor: npm is not installed; install Node.js and npm, then run it again",
            file=sys.stderr,
        )
        return 1
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        staged = work / "vendor"
        (staged / "licenses").mkdir(parents=True)
        for name, version, files in PACKAGES:
            tarball, info = pack(name, version, work)
            unpacked = work / f"{name}-{version}"
            with tarfile.open(tarball) as tar:
                tar.extractall(unpacked, filter="data")
            root = unpacked / "package"
            meta = json.loads((root / "package.json").read_text())
            licence = staged / "licenses" / f"{name}-LICENSE.txt"
            shutil.copyfile(root / "LICENSE", licence)
            shipped = []
            for inner, target in files.items():
                shutil.copyfile(root / inner, staged / target)
                shipped.append(
                    {"path": target, "from": f"package/{inner}", "sha256": sha256(staged / target)}
                )
            entries.append(
                {
                    "name": name,
                    "version": version,
                    "license": meta["license"],
                    "integrity": info["integrity"],
                    "tarball_sha1": info["shasum"],
                    "license_file": f"licenses/{licence.name}",
                    "license_sha256": sha256(licence),
                    "files": shipped,
                }
            )
        manifest = {
            "note": "written by `make vendor` (scripts/vendor.py); do not edit by hand",
            "packages": entries,
        }
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if VENDOR.exists():
            shutil.rmtree(VENDOR)
        shutil.copytree(staged, VENDOR)
    for e in entries:
        print(
            f"vendored {e['name']}@{e['version']} ({e['license']}): "
            + ", ".join(f["path"] for f in e["files"])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
