"""A small HTTP server on 127.0.0.1 for download tests.

It serves byte strings at fixed paths, honours ``Range: bytes=N-`` (and
``N-M``) with ``206 Partial Content``, and can misbehave on purpose:

* ``interrupt_after=n``: the first ``times`` GETs of a path announce the
  full ``Content-Length`` but send only ``n`` bytes, then close the
  connection (an interrupted transfer);
* ``ignore_range=True``: answer every request with the whole file and
  ``200`` (as some servers do);
* ``redirect_to``: answer ``302`` with a ``Location`` (as GitHub and
  Dataverse do before the bytes).

Every request is logged as ``(method, path_with_query, range_header)`` in
:attr:`FileServer.requests`, so a test can assert that a resume asked for the
right range, or that an idempotent call made no request at all.

Usage::

    with FileServer() as server:
        server.add("/a.zip", data)
        server.url + "/a.zip"
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_plus, urlsplit


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    interrupt_after: int | None = None
    times: int = 1
    ignore_range: bool = False
    redirect_to: str | None = None


class FileServer:
    """Threaded HTTP/1.1 server on a free port of 127.0.0.1; a context manager."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server._handle(self, send_body=True)

            def do_HEAD(self):
                server._handle(self, send_body=False)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, body: bytes = b"", **options) -> str:
        """Serve ``body`` at ``path`` (may include ``?query``); return the full URL."""
        self.routes[path] = Route(body=body, **options)
        return self.url + path

    def add_json(self, path: str, content, **options) -> str:
        return self.add(path, json.dumps(content).encode(), content_type="application/json", **options)

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- request handling -------------------------------------------------

    def _route(self, target: str) -> Route | None:
        if target in self.routes:
            return self.routes[target]
        parts = urlsplit(target)
        decoded = f"{parts.path}?{unquote_plus(parts.query)}" if parts.query else parts.path
        return self.routes.get(decoded) or self.routes.get(parts.path)

    def _handle(self, handler: BaseHTTPRequestHandler, send_body: bool) -> None:
        range_header = handler.headers.get("Range")
        with self._lock:
            self.requests.append((handler.command, handler.path, range_header))
            route = self._route(handler.path)
            interrupt = None
            if route is not None and route.interrupt_after is not None and route.times > 0 and send_body:
                route.times -= 1
                interrupt = route.interrupt_after
        handler.close_connection = True
        if route is None:
            self._send(handler, 404, b"not found", "text/plain", send_body)
            return
        if route.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", route.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.send_header("Connection", "close")
            handler.end_headers()
            return
        body = route.body
        start, end = 0, len(body) - 1
        status = route.status
        if range_header and not route.ignore_range and status == 200:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
            if match:
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else len(body) - 1
                if start >= len(body):
                    handler.send_response(416)
                    handler.send_header("Content-Range", f"bytes */{len(body)}")
                    handler.send_header("Content-Length", "0")
                    handler.send_header("Connection", "close")
                    handler.end_headers()
                    return
                end = min(end, len(body) - 1)
                status = 206
        chunk = body[start : end + 1]
        handler.send_response(status)
        handler.send_header("Content-Type", route.content_type)
        handler.send_header("Content-Length", str(len(chunk)))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Connection", "close")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        handler.end_headers()
        if not send_body:
            return
        if interrupt is not None:
            handler.wfile.write(chunk[:interrupt])
            handler.wfile.flush()
            return  # the connection closes with the body cut short
        handler.wfile.write(chunk)

    @staticmethod
    def _send(handler, status, body, content_type, send_body):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if send_body:
            handler.wfile.write(body)


def dataverse_listing(files: list[dict]) -> dict:
    """A Dataverse native-API dataset answer holding ``files``.

    Each item: ``id``, ``filename``, ``body`` (bytes, for size and MD5), and
    optionally ``checksum`` (override the listed value) or ``tabular`` (list
    it as an ingested table whose original is ``filename``).
    """
    import hashlib

    entries = []
    for item in files:
        body = item["body"]
        value = item.get("checksum", hashlib.md5(body).hexdigest())
        data_file = {
            "id": item["id"],
            "persistentId": "",
            "filename": item["filename"],
            "contentType": "application/octet-stream",
            "filesize": len(body),
            "storageIdentifier": f"s3://dvn-cloud:{item['id']:x}",
            "rootDataFileId": -1,
            "md5": value,
            "checksum": {"type": "MD5", "value": value},
        }
        if item.get("tabular"):
            data_file["filename"] = item["filename"].rsplit(".", 1)[0] + ".tab"
            data_file["filesize"] = len(body) + 17  # the .tab differs from the original
            data_file["originalFileFormat"] = "text/csv"
            data_file["originalFileName"] = item["filename"]
            data_file["originalFileSize"] = len(body)
        entries.append({"label": data_file["filename"], "restricted": False, "version": 1,
                        "datasetVersionId": 1, "dataFile": data_file})
    return {
        "status": "OK",
        "data": {
            "id": 3089437,
            "identifier": "DVN/YDEPUT",
            "persistentUrl": "https://doi.org/10.7910/DVN/YDEPUT",
            "protocol": "doi",
            "authority": "10.7910",
            "latestVersion": {"id": 1, "versionNumber": 1, "versionMinorNumber": 0,
                              "versionState": "RELEASED", "files": entries},
        },
    }


# ----------------------------------------------------------------------------
# Files in the real layouts, generated (shared by test_data and test_download)
# ----------------------------------------------------------------------------

#: (fold, freesound id, take, target, category, esc10) of a small fake ESC-50.
SMALL_ESC50_ROWS = [
    (1, 100001, "A", 0, "dog", True),
    (1, 100002, "A", 1, "rooster", False),
    (1, 100003, "A", 10, "rain", True),
    (2, 100004, "A", 0, "dog", True),
    (2, 100005, "B", 1, "rooster", False),
    (2, 100006, "A", 10, "rain", True),
]
#: verify_esc50 expectations that the small fake ESC-50 meets (sha256 aside).
SMALL_ESC50_COUNTS = {"n_rows": 6, "per_fold": 3, "per_class": 2}


def write_clip(path, seconds=5.0, sr=44100, channels=1, amplitude=0.5, frequency=440.0,
               format=None, subtype=None):
    """Write a sine tone (or silence with ``amplitude=0``); return the path."""
    from pathlib import Path

    import numpy as np
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    y = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    soundfile.write(str(path), data, sr, format=format, subtype=subtype)
    return path


def build_esc50_tree(root, rows=SMALL_ESC50_ROWS, extension=".wav", listed_extension=None, seconds=5.0):
    """Write a folder in ESC-50 layout (meta/esc50.csv + audio/) from ``rows``.

    ``listed_extension`` is the extension written into the CSV (default: the
    one of the files), so a test can list ``.wav`` while the folder holds
    ``.ogg``.  Returns the sha256 of the CSV.
    """
    import csv
    import hashlib
    from pathlib import Path

    root = Path(root)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    listed_extension = listed_extension or extension
    lines = []
    for fold, source, take, target, category, esc10 in rows:
        stem = f"{fold}-{source}-{take}-{target}"
        write_clip(root / "audio" / (stem + extension), seconds=seconds, frequency=200.0 + 37 * target,
                   format="OGG" if extension == ".ogg" else None,
                   subtype="VORBIS" if extension == ".ogg" else None)
        lines.append([stem + listed_extension, fold, target, category, esc10, source, take])
    with open(root / "meta" / "esc50.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        writer.writerows(lines)
    return hashlib.sha256((root / "meta" / "esc50.csv").read_bytes()).hexdigest()


def zip_tree(folder, top: str) -> bytes:
    """A zip archive of ``folder`` under the top folder ``top``, as GitHub archives a commit."""
    import io
    import zipfile
    from pathlib import Path

    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{top}/", b"")
        for path in sorted(folder.rglob("*")):
            name = f"{top}/{path.relative_to(folder).as_posix()}"
            archive.writestr(name + "/", b"") if path.is_dir() else archive.write(path, name)
    return buffer.getvalue()


def serve_esc50(server: FileServer, release, commit: str) -> str:
    """Serve the folder ``release`` as GitHub serves ESC-50 at ``commit``: the archive address redirects to
    its code-load host, which sends the zip.  Returns the archive's path on the server."""
    archive = f"/karolpiczak/ESC-50/archive/{commit}.zip"
    server.add(archive, redirect_to=server.url + "/codeload/esc50.zip")
    server.add("/codeload/esc50.zip", zip_tree(release, f"ESC-50-{commit}"))
    return archive
