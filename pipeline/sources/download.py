"""Download and extract NoctAct-HAR from Kaggle with the user's credentials
(the command: `python -m pipeline.download --output_dir=DIR`).

Credentials: KAGGLE_USERNAME and KAGGLE_KEY, else ~/.kaggle/kaggle.json (or
$KAGGLE_CONFIG_DIR/kaggle.json). A partial download resumes (HTTP Range); extraction refuses
any entry that would land outside DIR; a completed DIR is left alone.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from pipeline.progress import Progress

log = logging.getLogger(__name__)

KAGGLE_URL = "https://www.kaggle.com/api/v1/datasets/download/lakavathakshay/noctact-har"
ARCHIVE = "noctact-har.zip"
DONE_MARKER = ".download-complete.json"
_CHUNK = 1 << 20


class DownloadError(Exception):
    """The download or extraction cannot go on; the message says what and where."""


def kaggle_credentials(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(username, key) from the environment or kaggle.json."""
    env = os.environ if environ is None else environ
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return env["KAGGLE_USERNAME"], env["KAGGLE_KEY"]
    config_dir = env.get("KAGGLE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".kaggle")
    path = os.path.join(config_dir, "kaggle.json")
    try:
        with open(path) as f:
            data = json.load(f)
        return data["username"], data["key"]
    except FileNotFoundError:
        raise DownloadError(
            f"no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or create {path} "
            "(Kaggle > Settings > API > Create New Token)"
        ) from None
    except (json.JSONDecodeError, KeyError) as e:
        raise DownloadError(f"{path}: expected JSON with 'username' and 'key': {e}") from e


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # we follow redirects ourselves, without credentials
        return None


def _open(url: str, auth: tuple[str, str] | None, offset: int):
    """Open url (following redirects; credentials go to the first host only) from byte `offset`."""
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(10):
        request = urllib.request.Request(url)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            return opener.open(request, timeout=60)
        except urllib.error.HTTPError as e:
            if e.code in (301, 302, 303, 307, 308) and e.headers.get("Location"):
                url, auth = urllib.parse.urljoin(url, e.headers["Location"]), None
                continue
            if e.code == 416 and offset:
                raise DownloadError(f"{url}: server refused to resume at byte {offset}") from e
            if e.code in (401, 403):
                raise DownloadError(f"{url}: HTTP {e.code}: Kaggle credentials rejected, or the data set's terms not accepted") from e
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            raise DownloadError(f"{url}: cannot connect: {e.reason}") from e
    raise DownloadError(f"{url}: too many redirects")


def fetch(url: str, dest: str, auth: tuple[str, str] | None) -> None:
    """Download url to dest, resuming from dest + '.part' when a partial download is there."""
    part = dest + ".part"
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    response = _open(url, auth, offset)
    with response:
        if offset and response.status != 206:
            log.info("server does not resume; starting over")
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else 0
        if offset:
            log.info("resuming download at %.1f MB", offset / 1e6)
        with open(part, "ab" if offset else "wb") as out, Progress(total, "downloading", unit="B", initial=offset) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    size = os.path.getsize(part)
    if total and size != total:
        raise DownloadError(f"{part}: got {size} of {total} bytes; run again to resume")
    os.replace(part, dest)


def safe_members(archive: zipfile.ZipFile, root: str) -> list[zipfile.ZipInfo]:
    """The archive's entries, or DownloadError naming the first one that would escape `root`."""
    root = os.path.realpath(root)
    members = archive.infolist()
    for info in members:
        name = info.filename
        target = os.path.realpath(os.path.join(root, name))
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        if os.path.isabs(name) or is_link or os.path.commonpath([root, target]) != root:
            raise DownloadError(f"archive entry {name!r} would be written outside {root}; nothing was extracted")
    return members


def extract(archive_path: str, root: str) -> int:
    """Extract every entry under root after checking all of them; returns the entry count."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = safe_members(archive, root)
            archive.extractall(root, members)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{archive_path}: not a valid zip archive: {e}") from e
    return len(members)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Outcome(enum.Enum):
    """What download() did: fetched and extracted now, or found a finished earlier run."""

    DONE = "done"
    ALREADY_COMPLETE = "already complete"


def download(output_dir: str, url: str = KAGGLE_URL, auth: tuple[str, str] | None = None, keep_archive: bool = False) -> Outcome:
    """Download and extract into output_dir (nothing to do if an earlier run finished)."""
    marker = os.path.join(output_dir, DONE_MARKER)
    if os.path.exists(marker):
        return Outcome.ALREADY_COMPLETE
    os.makedirs(output_dir, exist_ok=True)
    archive = os.path.join(output_dir, ARCHIVE)
    if not os.path.exists(archive):
        fetch(url, archive, auth)
    entries = extract(archive, output_dir)
    record = {"url": url, "archive_bytes": os.path.getsize(archive), "archive_sha256": _sha256(archive), "entries": entries}
    if not keep_archive:
        os.remove(archive)
    with open(marker + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(marker + ".tmp", marker)
    log.info("extracted %d entries into %s", entries, output_dir)
    return Outcome.DONE
