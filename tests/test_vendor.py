"""The vendored libraries are exactly what the manifest says, and the page fits its budget.

The files are committed (a trading host may have no internet) and only `make vendor` changes
them; a hand edit, a file added without the manifest or a licence gone missing fails here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "signalosd" / "web" / "static"
VENDOR = STATIC / "vendor"
BUDGET_BYTES = 150 * 1024  # shipped JS + CSS + HTML, uncompressed (issue 10)


def _manifest() -> dict:
    return json.loads((VENDOR / "manifest.json").read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_vendored_file_matches_its_manifest_entry() -> None:
    packages = _manifest()["packages"]
    assert {p["name"] for p in packages} >= {"preact", "htm", "uplot"}
    for package in packages:
        assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"]), package
        assert package["license"], package
        assert package["integrity"].startswith("sha512-"), package
        assert package["files"], package
        for entry in package["files"]:
            path = VENDOR / entry["path"]
            assert path.is_file(), f"{entry['path']} is in the manifest but missing"
            assert _sha256(path) == entry["sha256"], f"{entry['path']} differs from npm's file"
        licence = VENDOR / package["license_file"]
        assert licence.is_file(), f"{package['name']}'s licence text is missing"
        assert _sha256(licence) == package["license_sha256"]


def test_no_file_under_vendor_is_missing_from_the_manifest() -> None:
    listed = {"manifest.json"}
    for package in _manifest()["packages"]:
        listed.add(package["license_file"])
        listed.update(entry["path"] for entry in package["files"])
    present = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file()}
    assert present == listed


def test_preact_is_version_10() -> None:
    (preact,) = [p for p in _manifest()["packages"] if p["name"] == "preact"]
    assert preact["version"].startswith("10.")


def test_the_shipped_page_fits_its_budget() -> None:
    shipped = [p for p in STATIC.rglob("*") if p.suffix in {".js", ".css", ".html"}]
    total = sum(p.stat().st_size for p in shipped)
    assert total <= BUDGET_BYTES, f"{total} bytes shipped, budget {BUDGET_BYTES}"


@pytest.mark.parametrize("name", ["index.html"])
def test_the_page_has_no_inline_script_or_style(name: str) -> None:
    page = (STATIC / name).read_text()
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag, f"inline script in {name}: {tag}"
    assert "<style" not in page, f"inline <style> in {name}"
    assert not re.search(r"\sstyle\s*=", page), f"style attribute in {name}"
    assert not re.search(r"\son[a-z]+\s*=", page), f"inline event handler in {name}"


def test_our_modules_use_nothing_the_csp_forbids() -> None:
    """eval and inline style attributes would be blocked by the CSP at run time; catch them here."""
    ours = [p for p in (STATIC / "js").glob("*.js")]
    assert ours
    for path in ours:
        text = path.read_text()
        for bad in ("eval(", "new Function", "innerHTML", "style=", ".style."):
            assert bad not in text, f"{path.name} uses {bad!r}"
