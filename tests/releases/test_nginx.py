"""Gated downloads behind a real nginx (Debian's package, started here on a loopback port):
Django checks the grant and answers with X-Accel-Redirect; nginx serves the bytes and the ranges
from its internal location, which cannot be fetched directly."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django_sendfile import utils as sendfile_utils

from access import services
from releases.models import ReleaseFile
from tests.access.world import access_world

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /protected/ {{
            internal;
            alias {media}/;
        }}
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
        }}
    }}
}}
"""


def _free_port() -> int:
    for port in range(18380, 18400):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 18380-18399")


@pytest.fixture
def nginx(live_server, tmp_path):
    if not Path(NGINX).exists():  # a skipped test proves nothing: fail, and say how to fix it
        pytest.fail("Debian's nginx is not installed: run bin/setup test (it installs nginx-light).")
    root = tmp_path / "nginx"
    root.mkdir()
    port = _free_port()
    media = Path(default_storage.location)
    (root / "nginx.conf").write_text(
        "user root;\n" + CONFIG.format(root=root, port=port, media=media, upstream=live_server.url)
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(root), "-c", str(root / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode())
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def nginx_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SENDFILE_ROOT = str(settings.MEDIA_ROOT)
    settings.SENDFILE_BACKEND = "django_sendfile.backends.nginx"
    settings.SENDFILE_URL = "/protected"
    sendfile_utils._get_sendfile.cache_clear()
    yield settings
    sendfile_utils._get_sendfile.cache_clear()


def _get(url: str, *, cookie: str = "", headers: dict[str, str] | None = None):
    request = urllib.request.Request(  # noqa: S310 - http on the loopback address only
        url, headers={**(headers or {}), **({"Cookie": cookie} if cookie else {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_granted_download_is_served_by_nginx_and_the_internal_location_is_closed(
    nginx_settings, live_server, nginx, client
) -> None:
    world = access_world()
    release = world.release
    name = "restricted/parquet/labels/labels-00000.parquet"
    stored = ReleaseFile.objects.get(release=release, name=name)
    on_disk = Path(default_storage.path(stored.storage_name)).read_bytes()
    client.force_login(world.users["granted"])
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    url = f"/releases/{release.pk}/files/{name}"

    # Django alone answers with the redirect header and no body.
    status, headers, body = _get(live_server.url + url, cookie=cookie)
    assert status == 200
    assert body == b""
    assert headers["X-Accel-Redirect"] == f"/protected/{stored.storage_name}"

    # Through nginx: the file itself, the header consumed.
    status, headers, body = _get(nginx + url, cookie=cookie)
    assert status == 200
    assert body == on_disk
    assert "X-Accel-Redirect" not in headers
    status, headers, body = _get(nginx + url, cookie=cookie, headers={"Range": "bytes=4-11"})
    assert (status, body) == (206, on_disk[4:12])

    # The protected location cannot be fetched by its URL, with or without a session.
    for cookie_value in ("", cookie):
        status, _, body = _get(f"{nginx}/protected/{stored.storage_name}", cookie=cookie_value)
        assert status == 404
        assert body != on_disk

    # A visitor does not learn that an unpublished release exists; a researcher without a grant is
    # refused; neither gets a byte of the file.
    status, _, body = _get(nginx + url)
    assert status == 404
    assert on_disk not in body
    other = Client()  # a second client: logging the first one in again would end the granted session
    other.force_login(world.users["credentialed"])
    status, _, body = _get(nginx + url, cookie=f"sessionid={other.cookies['sessionid'].value}")
    assert status == 403
    assert on_disk not in body

    # Revocation stops the next download.
    services.request_revoke(
        actor=world.users["committee"], request_id=world.grants["granted"].pk, reason="End."
    )
    status, _, body = _get(nginx + url, cookie=cookie)
    assert status == 403
    assert on_disk not in body
