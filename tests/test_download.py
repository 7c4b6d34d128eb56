"""download against a local HTTP server on 127.0.0.1: auth, redirect, resume, safe extraction."""

import base64
import http.server
import io
import json
import os
import threading
import zipfile

import pytest

from pipeline.sources import download


def _zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


GOOD = _zip({"Run/a.mp4": b"x" * 5000, "walk/b.mp4": os.urandom(70_000)})
EVIL = _zip({"Run/a.mp4": b"x", "../escaped.txt": b"gotcha"})


class _Server:
    """Kaggle-like: /api needs Basic auth and redirects to /blob, which serves byte ranges."""

    def __init__(self, payload):
        self.payload, self.requests = payload, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers)))
                if self.path == "/api":
                    expected = "Basic " + base64.b64encode(b"user:key").decode()
                    if self.headers.get("Authorization") != expected:
                        self.send_response(401)
                        self.end_headers()
                        return
                    self.send_response(302)
                    self.send_header("Location", "/blob")
                    self.end_headers()
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                body = outer.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def start(payload):
        servers.append(_Server(payload))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_downloads_with_credentials_follows_redirect_without_them_and_extracts(server, tmp_path):
    s = server(GOOD)
    out = str(tmp_path / "data")
    assert download.download(out, s.url, ("user", "key")) == download.Outcome.DONE
    assert open(os.path.join(out, "walk/b.mp4"), "rb").read() == zipfile.ZipFile(io.BytesIO(GOOD)).read("walk/b.mp4")
    assert [p for p, _ in s.requests] == ["/api", "/blob"]
    assert "Authorization" not in s.requests[1][1]  # credentials never go to the redirected host
    assert not os.path.exists(os.path.join(out, download.ARCHIVE))
    assert json.load(open(os.path.join(out, download.DONE_MARKER)))["archive_bytes"] == len(GOOD)
    assert download.download(out, s.url, ("user", "key")) == download.Outcome.ALREADY_COMPLETE
    assert len(s.requests) == 2


def test_resumes_a_partial_download_with_a_range_request(server, tmp_path):
    s = server(GOOD)
    out = tmp_path / "data"
    out.mkdir()
    (out / (download.ARCHIVE + ".part")).write_bytes(GOOD[:30_000])
    download.download(str(out), s.url, ("user", "key"), keep_archive=True)
    assert s.requests[1][1].get("Range") == "bytes=30000-"
    assert (out / download.ARCHIVE).read_bytes() == GOOD


def test_refuses_an_archive_with_an_entry_escaping_the_dir(server, tmp_path):
    s = server(EVIL)
    out = tmp_path / "data"
    with pytest.raises(download.DownloadError, match=r"'\.\./escaped\.txt' would be written outside"):
        download.download(str(out), s.url, ("user", "key"))
    assert not (tmp_path / "escaped.txt").exists()
    assert not (out / "Run").exists() and not (out / download.DONE_MARKER).exists()


def test_wrong_credentials_and_missing_credentials_are_clear(server, tmp_path):
    s = server(GOOD)
    with pytest.raises(download.DownloadError, match="HTTP 401"):
        download.download(str(tmp_path / "d"), s.url, ("user", "wrong"))
    with pytest.raises(download.DownloadError, match="KAGGLE_USERNAME"):
        download.kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path)})
    (tmp_path / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert download.kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path)}) == ("u", "k")
    assert download.kaggle_credentials({"KAGGLE_USERNAME": "a", "KAGGLE_KEY": "b"}) == ("a", "b")
