"""The dashboard's files: served at `/` and `/static/…` with their types, strong ETags and
revalidation; nothing else is reachable however the path is spelt (sent as raw bytes over a
real socket to the daemon's own front door, so aiohttp's client normalises nothing); and every
response, pages and API alike, carries the security headers."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from signalosd import keys, strict_json
from signalosd.app import create_app
from signalosd.clock import ManualClock
from signalosd.ops.listeners import GuardedSite
from signalosd.web.files import ROOT, StaticFiles
from signalosd.web.headers import CSP
from tests.conftest import make_settings

ROOT_DIR = Path(__file__).resolve().parent.parent
SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT"
SECURITY = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
FILES = {
    "index.html": b"<!doctype html><title>SignalOS</title>\n",
    "js/app.js": b"export const ok = 1;\n",
    "css/app.css": b"body { margin: 0 }\n",
    "vendor/manifest.json": b'{"packages": []}\n',
    "vendor/licenses/preact-LICENSE.txt": b"MIT\n",
    "vendor/LICENSE": b"Apache-2.0\n",
    "img/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
    "blob.bin": b"\x00\x01",
    ".secret": SECRET.encode(),
}


@dataclass
class Site:
    port: int
    root: Path
    app: web.Application

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_root(tmp_path: Path) -> Path:
    """A static root with every kind of file, a dotfile, an empty folder, and symlinks: one
    inside (served), one file and one folder pointing outside (never served)."""
    root, outside = tmp_path / "static", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    for rel, body in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    (root / "empty").mkdir()
    (root / "js" / "alias.js").symlink_to(root / "js" / "app.js")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "js" / ".hidden").mkdir()
    (root / "js" / ".hidden" / "x.js").write_text(SECRET)
    return root


async def serve(tmp_path: Path, root: Path | None) -> AsyncIterator[Site]:
    """The daemon's app behind its real front door (GuardedSite), on a loopback port."""
    app = create_app(make_settings(tmp_path), ManualClock())
    if root is not None:
        app[keys.STATIC] = StaticFiles(root)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = GuardedSite(runner, host="127.0.0.1", port=0)
    await site.start()
    port = next(a[1] for a in runner.addresses if not isinstance(a, str))
    try:
        yield Site(port, root or ROOT, app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in serve(tmp_path, make_root(tmp_path)):
        yield s


@pytest.fixture
async def packaged(tmp_path: Path) -> AsyncIterator[Site]:
    """The daemon as installed: the package's own static/ folder."""
    async for s in serve(tmp_path, None):
        yield s


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, object]:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        parsed = strict_json.loads(self.body)
        assert isinstance(parsed, dict)
        error = parsed["error"]
        assert isinstance(error, dict)
        assert set(error) == {"code", "message", "details"}
        return error


async def raw(site: Site, target: bytes, method: bytes = b"GET", extra: bytes = b"") -> Reply:
    """One request with the target exactly as given, read to the close of the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    try:
        writer.write(
            method
            + b" "
            + target
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + extra
            + b"Connection: close\r\n\r\n"
        )
        async with asyncio.timeout(10):
            data = await reader.read()
    finally:
        writer.transport.abort()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return Reply(int(status_line.split()[1]), headers, body)


# ---- serving ----------------------------------------------------------------------------------

TYPES = [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/static/index.html", "index.html", "text/html; charset=utf-8"),
    ("/static/js/app.js", "js/app.js", "text/javascript; charset=utf-8"),
    ("/static/css/app.css", "css/app.css", "text/css; charset=utf-8"),
    ("/static/vendor/manifest.json", "vendor/manifest.json", "application/json"),
    (
        "/static/vendor/licenses/preact-LICENSE.txt",
        "vendor/licenses/preact-LICENSE.txt",
        "text/plain; charset=utf-8",
    ),
    ("/static/vendor/LICENSE", "vendor/LICENSE", "text/plain; charset=utf-8"),
    ("/static/img/logo.svg", "img/logo.svg", "image/svg+xml"),
    ("/static/blob.bin", "blob.bin", "application/octet-stream"),
    ("/static/js/alias.js", "js/app.js", "text/javascript; charset=utf-8"),  # symlink inside
]


@pytest.mark.parametrize(("path", "rel", "ctype"), TYPES, ids=[t[0] for t in TYPES])
async def test_files_are_served_with_their_content_type_and_cache_headers(
    site: Site, path: str, rel: str, ctype: str
) -> None:
    reply = await raw(site, path.encode())
    assert reply.status == 200
    assert reply.body == FILES[rel]
    assert reply.headers["content-type"] == ctype
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.headers["etag"] == f'"{hashlib.sha256(FILES[rel]).hexdigest()[:32]}"'
    assert reply.headers["content-length"] == str(len(FILES[rel]))


async def test_the_packaged_vendor_files_are_served_as_they_are_on_disk(packaged: Site) -> None:
    async with aiohttp.ClientSession() as http:
        for rel in ("vendor/htm.umd.js", "vendor/uPlot.min.css", "vendor/manifest.json"):
            async with http.get(f"{packaged.url}/static/{rel}") as resp:
                body = await resp.read()
                assert resp.status == 200, rel
                assert body == (ROOT / rel).read_bytes()
                expected = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
                assert resp.headers["ETag"] == expected
        async with http.get(f"{packaged.url}/static/vendor/htm.umd.js") as resp:
            assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"


INM = [
    ("the same tag", "{etag}", 304),
    ("a weak form of it", "W/{etag}", 304),
    ("in a list", '"abc", {etag}', 304),
    ("any", "*", 304),
    ("another tag", '"0123456789abcdef0123456789abcdef"', 200),
    ("garbage", "not a tag", 200),
]


@pytest.mark.parametrize(("case", "header", "status"), INM, ids=[c[0] for c in INM])
async def test_if_none_match_revalidates(site: Site, case: str, header: str, status: int) -> None:
    first = await raw(site, b"/static/js/app.js")
    etag = first.headers["etag"]
    again = await raw(
        site, b"/static/js/app.js", extra=f"If-None-Match: {header.format(etag=etag)}\r\n".encode()
    )
    assert again.status == status
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    assert again.body == (b"" if status == 304 else FILES["js/app.js"])
    for name, value in SECURITY.items():
        assert again.headers[name] == value


@pytest.mark.parametrize("path", [b"/", b"/static/js/app.js"])
async def test_head_sends_the_headers_and_no_body(site: Site, path: bytes) -> None:
    get = await raw(site, path)
    head = await raw(site, path, method=b"HEAD")
    assert head.status == 200 and head.body == b""
    for name in ("content-type", "content-length", "etag", "cache-control"):
        assert head.headers[name] == get.headers[name], name
    missing = await raw(site, b"/static/nope.js", method=b"HEAD")
    assert missing.status == 404 and missing.body == b""


async def test_other_methods_on_a_file_are_405_in_the_error_shape(site: Site) -> None:
    reply = await raw(site, b"/static/js/app.js", method=b"POST", extra=b"Content-Length: 0\r\n")
    assert reply.status == 405
    assert reply.error()["code"] == "method_not_allowed"


# ---- nothing else is reachable ----------------------------------------------------------------

NOT_SERVED = [
    b"/static/../outside/secret.txt",
    b"/static/js/../../outside/secret.txt",
    b"/static/%2e%2e/outside/secret.txt",
    b"/static/%2E%2E/%2E%2E/etc/passwd",
    b"/static/js/..%2f..%2foutside%2fsecret.txt",
    b"/static/....//....//outside/secret.txt",
    b"/static//etc/passwd",
    b"/static/%2fetc%2fpasswd",
    b"/static/C:/Windows/win.ini",
    b"/static/%5c%5cserver%5cshare%5cx.js",
    b"/static/js\\..\\..\\outside\\secret.txt",
    b"/static/js%5c..%5c..%5coutside%5csecret.txt",
    b"/static/js/app.js%00",
    b"/static/js/app.js%00.png",
    b"/static/escape.txt",  # a symlink to a file outside the root
    b"/static/linkdir/secret.txt",  # a symlinked folder
    b"/static/.secret",
    b"/static/js/.hidden/x.js",
    b"/static/js/./app.js",
    b"/static/js",
    b"/static/js/",
    b"/static/empty",
    b"/static/empty/",
    b"/static/",
    b"/static",
    b"/static/%ZZ",
    b"/static/js/app.js/",
    b"/static/JS/APP.JS",
    b"/index.html",
    b"/static/" + b"a/" * 2000,
]


@pytest.mark.parametrize("target", NOT_SERVED, ids=[t.decode()[:60] for t in NOT_SERVED])
async def test_no_spelling_of_a_path_reaches_anything_else(site: Site, target: bytes) -> None:
    reply = await raw(site, target)
    assert reply.status == 404, (target, reply)
    error = reply.error()
    assert error["code"] == "not_found" and error["message"]
    assert SECRET.encode() not in reply.body
    for listed in (b"app.css", b"alias.js", b"manifest.json"):  # no listing
        assert listed not in reply.body
    for name, value in SECURITY.items():
        assert reply.headers[name] == value


@pytest.mark.parametrize("target", [b"/static/js/app.js\x00", b"/static/js/\xff.js"])
async def test_bytes_the_parser_refuses_get_the_error_shape_not_a_500(
    site: Site, target: bytes
) -> None:
    reply = await raw(site, target)
    assert reply.status in (400, 404), reply
    assert reply.error()["code"] in ("bad_request", "not_found")
    assert SECRET.encode() not in reply.body
    for name, value in SECURITY.items():
        assert reply.headers[name] == value


async def test_without_index_html_the_page_is_404_and_the_api_works(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    (root / "js").mkdir(parents=True)
    (root / "js" / "app.js").write_text("x")
    async for s in serve(tmp_path, root):
        reply = await raw(s, b"/")
        assert reply.status == 404
        assert "index.html" in str(reply.error()["message"])
        assert (await raw(s, b"/livez")).status == 200
        assert (await raw(s, b"/static/js/app.js")).status == 200


async def test_without_a_static_folder_at_all_the_daemon_still_serves(tmp_path: Path) -> None:
    async for s in serve(tmp_path, tmp_path / "not-installed"):
        assert (await raw(s, b"/")).status == 404
        assert (await raw(s, b"/static/js/app.js")).status == 404
        assert (await raw(s, b"/readyz")).status == 200


# ---- security headers on every response -------------------------------------------------------


async def test_every_kind_of_response_carries_the_security_headers(site: Site) -> None:
    token = site.app[keys.SETTINGS].admin_token_path.read_text().strip()
    auth = f"Authorization: Bearer {token}\r\n".encode()
    replies = {
        "page": await raw(site, b"/"),
        "file": await raw(site, b"/static/css/app.css"),
        "api": await raw(site, b"/api/trading/state", extra=auth),
        "api error 401": await raw(site, b"/api/trading/state"),
        "unknown path 404": await raw(site, b"/no/such/thing"),
        "wrong method 405": await raw(site, b"/livez", method=b"DELETE"),
        "public": await raw(site, b"/openapi.json"),
        "parser error 400": await raw(site, b"/livez", method=b"G@T"),
    }
    assert replies["api"].status == 200 and replies["api error 401"].status == 401
    assert replies["parser error 400"].status == 400
    for kind, reply in replies.items():
        for name, value in SECURITY.items():
            assert reply.headers.get(name) == value, (kind, name, reply.headers)

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{site.url}/ws") as ws,
    ):
        upgrade = ws._response.headers  # the 101 Switching Protocols
        for name, value in SECURITY.items():
            assert upgrade.get(name) == value, name


def test_the_csp_is_exactly_the_contracts() -> None:
    assert CSP == (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


# ---- packaging --------------------------------------------------------------------------------


def test_a_build_ships_every_static_file(tmp_path: Path) -> None:
    """setuptools' build_py (what a wheel holds) copies all of static/ into the package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT_DIR / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("signalosd", "signalos_cli"):
        shutil.copytree(ROOT_DIR / package, src / package, ignore=ignore)
    (src / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    out = tmp_path / "build"
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

    def files(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.parts)
        }

    shipped = files(out / "signalosd" / "web" / "static")
    assert files(src / "signalosd" / "web" / "static") <= shipped
    assert "vendor/manifest.json" in shipped and "vendor/htm.umd.js" in shipped
