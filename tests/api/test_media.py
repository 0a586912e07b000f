"""Media through caratflow, over real HTTP: a real server on 127.0.0.1 plays the supplier's media host
(allow-listed through the feed endpoint setting), another plays an internal service that must never
be reached. Links, tokens, SSRF refusals, caps, and no supplier host in any partner answer."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import catalogue_rows
import httpx
import psycopg
import pytest
from psycopg import sql

from api.routes import media as media_route
from emulator.page import CERTIFICATES, MEDIA
from shared.access import server_keys
from shared.access.server_keys import ServerKeys
from shared.catalogue import cursor, media
from shared.config import Settings
from shared.db.rows import one

PHOTO = os.urandom(300_000)
CLIP = os.urandom(50_000)


@dataclass
class Host:
    """A threaded HTTP server answering from `routes` and recording every path asked of it."""

    routes: dict[str, tuple[int, dict[str, str], bytes]]
    hits: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.hits.append(self.path)
            if self.path == "/slow.jpg":
                time.sleep(2)
            if self.path == "/endless.jpg":  # no Content-Length: the body ends when the connection does
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                try:
                    for _ in range(25):
                        self.wfile.write(b"\0" * 1024 * 1024)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the proxy hung up at its cap, as it should
                return
            status, headers, body = host.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers and self.path != "/unsized.jpg":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return  # keep test output to the assertions

    return Handler


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    """(the supplier's media host, an internal service elsewhere on 127.0.0.1)."""
    elsewhere = Host({"/img.jpg": (200, {"Content-Type": "image/jpeg"}, b"internal")})
    supplier = Host({})
    servers = []
    for host in (supplier, elsewhere):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(host))
        host.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    supplier.routes.update(
        {
            "/img.jpg": (
                200,
                {"Content-Type": "image/jpeg", "ETag": '"p1"', "X-Supplier-Stone": "S1", "Set-Cookie": "who=nivoda"},
                PHOTO,
            ),
            "/clip.mp4": (200, {"Content-Type": "video/mp4"}, CLIP),
            "/unsized.jpg": (200, {"Content-Type": "image/png"}, PHOTO[:1000]),
            "/huge.jpg": (200, {"Content-Type": "image/jpeg", "Content-Length": str(21 * 1024 * 1024)}, b""),
            "/page.html": (200, {"Content-Type": "text/html"}, b"<html>"),
            "/logo.svg": (200, {"Content-Type": "image/svg+xml"}, b"<svg onload='alert(1)'/>"),
            "/gzip.jpg": (200, {"Content-Type": "image/jpeg", "Content-Encoding": "gzip"}, b"\x1f\x8b"),
            "/gone.jpg": (500, {"Content-Type": "image/jpeg"}, b"oops"),
            "/redirect.jpg": (302, {"Location": elsewhere.url("/img.jpg"), "Content-Type": "image/jpeg"}, b""),
            "/slow.jpg": (200, {"Content-Type": "image/jpeg"}, b"late"),
        }
    )
    yield supplier, elsewhere
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api_settings(api_settings: Settings, hosts) -> Settings:
    supplier, _ = hosts
    return api_settings.model_copy(update={"nivoda_endpoint": supplier.url("/api/diamonds")})


@pytest.fixture
def stones(database_url: str) -> list[dict[str, Any]]:
    rows = [r for r in catalogue_rows.make_rows(40, seed=9) if r["delisted_at"] is None]
    catalogue_rows.insert(database_url, rows)
    return rows


def _link(client, database_url: str, stone: dict[str, Any], url: str | None, column: str = "image_url") -> str:
    """Give `stone` this supplier URL and return the link the API hands partners for it."""
    with psycopg.connect(database_url) as conn:
        statement = sql.SQL("UPDATE diamonds SET {} = %s WHERE diamond_id = %s").format(sql.Identifier(column))
        conn.execute(statement, (url, stone["diamond_id"]))
    link: str = client.diamond(str(stone["diamond_id"]))[column]
    return link


def _path(link: str) -> str:
    assert link.startswith("/api/media/"), link
    return link


def test_image_and_video_arrive_byte_for_byte_with_only_safe_headers(client, raw, database_url, stones, hosts):
    supplier, _ = hosts
    image = _path(_link(client, database_url, stones[0], supplier.url("/img.jpg")))
    video = _path(_link(client, database_url, stones[0], supplier.url("/clip.mp4"), "video_url"))
    got = raw.get(image)
    assert got.status_code == 200
    assert got.content == PHOTO
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-length"] == str(len(PHOTO))
    assert got.headers["etag"] == '"p1"'
    assert "x-supplier-stone" not in got.headers
    assert "set-cookie" not in got.headers
    cache = got.headers["cache-control"]
    assert cache.startswith("public, max-age=")
    assert 0 < int(cache.split("=")[1]) < media.TOKEN_SECONDS
    # Partners' pages on other origins may embed it; the API's data answers stay same-origin.
    assert got.headers["cross-origin-resource-policy"] == "cross-origin"
    assert raw.get("/api/health").headers["cross-origin-resource-policy"] == "same-origin"
    clip = raw.get(video)
    assert (clip.status_code, clip.content, clip.headers["content-type"]) == (200, CLIP, "video/mp4")
    # A body of unknown length is read (under the cap) and passed on whole.
    unsized = raw.get(_path(_link(client, database_url, stones[1], supplier.url("/unsized.jpg"))))
    assert (unsized.status_code, unsized.content) == (200, PHOTO[:1000])
    assert unsized.headers["content-length"] == "1000"


def test_links_are_stable_within_the_clock_hour_and_agree_between_search_and_stone(
    api, client, database_url, stones, hosts
):
    supplier, _ = hosts
    stone = stones[0]
    link = _link(client, database_url, stone, supplier.url("/img.jpg"))
    assert client.diamond(str(stone["diamond_id"]))["image_url"] == link
    found = {d["diamond_id"]: d for d in client.iter_search(limit=100)}
    assert found[str(stone["diamond_id"])]["image_url"] == link
    others = [d for d in found.values() if d["diamond_id"] != str(stone["diamond_id"])]
    assert all(d["image_url"] is None for d in others)  # no supplier URL, no link
    # With a public URL configured, links are absolute.
    api.app.state.api.settings = api.settings.model_copy(update={"api_public_url": "https://api.caratflow.test/"})
    absolute = client.diamond(str(stone["diamond_id"]))["image_url"]
    assert absolute == f"https://api.caratflow.test{link}"


def test_forged_edited_expired_and_foreign_tokens_are_404(raw, client, database_url, stones, hosts):
    supplier, _ = hosts
    stone = stones[0]
    link = _path(_link(client, database_url, stone, supplier.url("/img.jpg")))
    with psycopg.connect(database_url) as conn:
        keys = server_keys.load(conn)
    version, payload, tag = link.removeprefix("/api/media/").split(".")
    other = "A" if payload[3] != "A" else "B"
    expired = media.mint(keys, stone["diamond_id"], "image", int(time.time()) - 1)
    forged = media.mint(ServerKeys(((keys.signing_version, b"k" * 32),)), stone["diamond_id"], "image", 2**32 - 1)
    rotated_out = f"{version + '0'}.{payload}.{tag}"
    from shared.catalogue.query import DiamondSearch

    foreign = cursor.encode(DiamondSearch(), 1, stone["diamond_id"], keys)  # a valid cursor is no media link
    unknown = media.mint(keys, uuid.uuid4(), "image", int(time.time()) + 600)
    before = len(supplier.hits)
    for token in (
        f"{version}.{payload[:3]}{other}{payload[4:]}.{tag}",
        f"{version}.{payload}.{tag[:-2]}",
        expired,
        forged,
        rotated_out,
        foreign,
        unknown,
    ):
        response = raw.get(f"/api/media/{token}")
        assert response.status_code == 404, token
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:caratflow:problem:unknown-media"
    assert len(supplier.hits) == before


@pytest.mark.parametrize(
    "path",
    [
        "%00",
        "1.%00AAAA.BBBB",
        "A" * 6000,
        "1." + "A" * 3000 + ".B",
        "%C3%A9t%C3%A9",
        "%ED%A0%80.AAAA.BBBB",
        "%EF%BC%91.AAAA.BBBB",  # a fullwidth digit, which int() would take
        "1.%F0%9F%92%8E.AAAA",
        "1.AAAA.BBBB%0D%0AX-Injected:%201",
        "..%2F..%2Fetc%2Fpasswd",
        "1.AAA=.BBBB",
        "1.AAAA.BBBB%0A",
    ],
)
def test_hostile_tokens_are_refused_never_5xx(raw, stones, path):
    response = raw.get(f"/api/media/{path}")
    assert response.status_code in (400, 404, 414), response.text
    assert "x-injected" not in response.headers


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda s, e: e.url("/img.jpg"), "another port on the same address"),
        (lambda s, e: f"http://localhost:{s.port}/img.jpg", "a host that is not allow-listed"),
        (lambda s, e: "file:///etc/passwd", "a file"),
        (lambda s, e: f"gopher://127.0.0.1:{s.port}/img.jpg", "another scheme"),
        (lambda s, e: f"http://127.0.0.1:{s.port}@127.0.0.1:{e.port}/img.jpg", "user info hiding the host"),
        (lambda s, e: f"http://127.0.0.1:{s.port}\\@127.0.0.1:{e.port}/img.jpg", "a backslash trick"),
        (lambda s, e: s.url("/redirect.jpg"), "a redirect from the supplier to elsewhere"),
        (lambda s, e: "http://[::1", "not a URL"),
        (lambda s, e: "", "an empty URL"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_urls_off_the_supplier_host_are_never_fetched(raw, client, database_url, stones, hosts, make_url, reason):
    supplier, elsewhere = hosts
    link = _path(_link(client, database_url, stones[0], make_url(supplier, elsewhere)))
    response = raw.get(link)
    assert response.status_code == 502, reason
    problem = response.json()
    assert problem["type"] == "urn:caratflow:problem:media-unavailable"
    assert "127.0.0.1" not in response.text
    assert str(supplier.port) not in response.text
    assert elsewhere.hits == [], reason
    assert set(supplier.hits) <= {"/redirect.jpg"}, reason


@pytest.mark.parametrize(
    "path", ["/huge.jpg", "/endless.jpg", "/page.html", "/logo.svg", "/gzip.jpg", "/gone.jpg", "/slow.jpg"]
)
def test_oversize_wrong_type_failing_or_slow_supplier_answers_are_502(
    raw, client, database_url, stones, hosts, monkeypatch, path
):
    supplier, _ = hosts
    monkeypatch.setattr(media_route, "TIMEOUT", httpx.Timeout(0.5))
    response = raw.get(_path(_link(client, database_url, stones[0], supplier.url(path))))
    assert response.status_code == 502
    assert response.json()["type"] == "urn:caratflow:problem:media-unavailable"
    assert supplier.hits == [path]


def test_a_stone_without_that_media_is_404(raw, client, database_url, stones, hosts):
    supplier, _ = hosts
    stone = stones[0]
    link = _path(_link(client, database_url, stone, supplier.url("/img.jpg")))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE diamonds SET image_url = NULL WHERE diamond_id = %s", (stone["diamond_id"],))
    assert raw.get(link).status_code == 404


def test_allow_list_takes_the_feed_host_and_port_or_a_supplier_domain_on_its_default_port():
    endpoint = "https://integrations.nivoda.net/api/diamonds"
    for url, expected in (
        ("https://integrations.nivoda.net/x.jpg", True),
        ("https://integrations.nivoda.net:8443/x.jpg", False),
        ("https://media.nivoda.net/x.jpg", True),
        ("http://media.nivoda.net/x.jpg", True),
        ("https://media.nivoda.net:22/x.jpg", False),
        ("https://nivoda.net.evil.test/x.jpg", False),
        ("https://evilnivoda.net/x.jpg", False),
        ("https://user@media.nivoda.net/x.jpg", False),
        ("ftp://media.nivoda.net/x.jpg", False),
    ):
        assert media_route.allowed(httpx.URL(url), endpoint) is expected, url


def test_no_partner_answer_names_the_supplier_media_host(client, run_sync, database_url):
    """A real sync from the feed emulator: the catalogue holds its media URLs, no answer shows them."""
    run_sync("nivoda-natural")
    with psycopg.connect(database_url) as conn:
        held = one(
            conn.execute(
                "SELECT count(image_url), count(video_url), count(v360_url), count(certificate_url) FROM diamonds"
            ).fetchone()
        )
    assert all(held), "the emulator's stones carry supplier media URLs"
    hosts = (MEDIA.split("://")[1], CERTIFICATES.split("://")[1], "nivoda-emulator")
    bodies: list[str] = []
    images = v360 = 0
    for fields in ("slim", "full"):
        cursor_value = None
        while True:
            params = {"limit": 200, "fields": fields, **({"cursor": cursor_value} if cursor_value else {})}
            response = client.http.get("/api/v1/diamonds", params=params)
            bodies.append(response.text)
            page = response.json()
            images += sum(d["image_url"] is not None for d in page["data"])
            v360 += sum(d.get("has_v360") is True for d in page["data"])
            cursor_value = page["page"]["next_cursor"]
            if cursor_value is None:
                break
    first = client.search(limit=5, fields="full")["data"]
    bodies += [client.http.get(f"/api/v1/diamonds/{d['diamond_id']}").text for d in first]
    assert images
    assert v360
    for body in bodies:
        assert not any(host in body for host in hosts)
        assert "v360_url" not in body
        assert "certificate_url" not in body
