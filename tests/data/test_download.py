"""Downloader tests against a loopback HTTP server (127.0.0.1) serving files the tests make."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from dass.data import download, file_checks, transfer
from dass.errors import DassError

REPO = Path(__file__).resolve().parents[2]
FAST = {"retry": transfer.Retry(retries=3, backoff=0.01, timeout=5.0)}


class Mirror:
    """What the loopback server serves and how it misbehaves, set by each test."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.fail_500: Counter = Counter()      # path -> number of 500 answers still to give
        self.cut_after: dict[str, int] = {}     # path -> body bytes sent before hanging up (once)
        self.ignore_range: set[str] = set()     # paths answered 200 with the whole file
        self.served: Counter = Counter()        # path -> body bytes sent
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.lock = threading.Lock()


def make_handler(mirror: Mirror):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = urlsplit(self.path).path
            rng = self.headers.get("Range")
            with mirror.lock:
                mirror.requests.append((path, rng))
                if mirror.fail_500[path] > 0:
                    mirror.fail_500[path] -= 1
                    self.send_error(500)
                    return
                cut = mirror.cut_after.pop(path, None)
            if path not in mirror.files:
                self.send_error(404)
                return
            data = mirror.files[path]
            if path in mirror.ignore_range:
                rng = None
            start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
            if start >= len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if rng else 200)
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:] if cut is None else data[start:start + cut]
            self.wfile.write(body)
            self.wfile.flush()
            with mirror.lock:
                mirror.served[path] += len(body)
            self.close_connection = True

    return Handler


@pytest.fixture
def server():
    mirror = Mirror()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(mirror))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    mirror.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield mirror
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def dtd_files() -> dict[str, bytes]:
    """A tiny DTD: 47 training images (one per class), 5 test images."""
    return {
        "train_images.npy": npy_bytes(np.zeros((47, 4, 4, 3), np.uint8)),
        "test_images.npy": npy_bytes(np.full((5, 4, 4, 3), 7, np.uint8)),
        "train_labels.npy": npy_bytes(np.arange(47, dtype=np.int64)),
        "test_labels.npy": npy_bytes(np.array([0, 3, 9, 46, 3], dtype=np.int64)),
    }


def serve_dataset(mirror: Mirror, name: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        mirror.files[f"/dataset/{name}/{rel}"] = data


# --------------------------------------------------------------------------- source table

def test_sources_are_https_and_every_split_has_images_and_labels():
    rows = download.read_sources()
    assert len(rows) == 45  # 30 dataset files, 14 teachers, 1 zip (the original table)
    assert all(r.url.startswith("https://") for r in rows)
    for name in download.DATASETS:
        splits = {"images": set(), "labels": set()}
        for r in rows:
            if r.kind == "dataset" and r.group == name and r.relative_path.endswith(".npy"):
                split, role = Path(r.relative_path).stem.rsplit("_", 1)
                splits[role].add(split)
        expected = {"train", "valid"} if name == "tiny_imagenet" else {"train", "test"}
        assert splits == {"images": expected, "labels": expected}, name
    keys = download.checkpoint_keys()
    assert keys[:10] == [f"tiny_imagenet-{k}" for k in range(10)]
    assert set(keys[10:]) == {"cub", "dtd", "quickdraw", "stanford_cars"}


def test_mirror_url_layout(monkeypatch):
    rows = download.read_sources()
    label = next(r for r in rows if r.relative_path == "labels/train_labels.npy")
    zip_row = next(r for r in rows if r.kind == "preprocessed")
    assert label.url_for("http://m/x") == "http://m/x/dataset/tiny_imagenet/labels/train_labels.npy"
    assert zip_row.url_for("http://m") == "http://m/preprocessed/preprocessed.zip"
    assert label.url_for(None) == label.url
    assert zip_row.local_path("/r") == Path("/r/preprocessed.zip")
    monkeypatch.setenv("DASS_MIRROR", "https://mirror.example/dass/")
    assert download.resolve_base_url() == "https://mirror.example/dass"
    assert download.resolve_base_url("http://other") == "http://other"
    with pytest.raises(DassError, match="http"):
        download.resolve_base_url("ftp://nope")


# --------------------------------------------------------------------------- downloads

def test_dataset_through_mirror_layout(server, tmp_path):
    files = dtd_files()
    serve_dataset(server, "dtd", files)
    paths = download.download_dataset("dtd", tmp_path, server.base_url, **FAST)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == sorted(
        f"dtd/{rel}" for rel in files)
    for rel, data in files.items():
        assert (tmp_path / "dtd" / rel).read_bytes() == data
        assert server.served[f"/dataset/dtd/{rel}"] == len(data)
    assert not list(tmp_path.rglob("*.part"))
    manifest = json.loads((tmp_path / ".dass_manifest.json").read_text())["files"]
    assert manifest["dtd/train_labels.npy"]["sha256"] == hashlib.sha256(
        files["train_labels.npy"]).hexdigest()
    # a second run finds verified files and fetches nothing
    served = sum(server.served.values())
    download.download_dataset("dtd", tmp_path, server.base_url, **FAST)
    assert sum(server.served.values()) == served


def test_resume_after_truncated_transfer_fetches_nothing_twice(server, tmp_path):
    data = npy_bytes(np.arange(5000, dtype=np.int64))  # 40128 bytes
    server.files["/f/values.npy"] = data
    server.cut_after["/f/values.npy"] = 1000
    target = transfer.download_file(f"{server.base_url}/f/values.npy", tmp_path / "values.npy", **FAST)
    assert target.read_bytes() == data
    assert server.served["/f/values.npy"] == len(data)
    assert server.requests == [("/f/values.npy", None), ("/f/values.npy", "bytes=1000-")]


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    data = npy_bytes(np.arange(3000, dtype=np.int16))
    server.files["/f/v.npy"] = data
    server.cut_after["/f/v.npy"] = 700
    server.ignore_range.add("/f/v.npy")
    target = transfer.download_file(f"{server.base_url}/f/v.npy", tmp_path / "v.npy", **FAST)
    assert target.read_bytes() == data
    assert server.served["/f/v.npy"] == 700 + len(data)


def test_complete_part_file_is_finished_without_refetching(server, tmp_path):
    data = npy_bytes(np.arange(50, dtype=np.uint8))
    server.files["/f/done.npy"] = data
    (tmp_path / "done.npy.part").write_bytes(data)  # a run that died before the rename
    target = transfer.download_file(f"{server.base_url}/f/done.npy", tmp_path / "done.npy", **FAST)
    assert target.read_bytes() == data
    assert server.requests == [("/f/done.npy", f"bytes={len(data)}-")]
    assert server.served["/f/done.npy"] == 0
    assert not (tmp_path / "done.npy.part").exists()


def test_server_error_then_success(server, tmp_path):
    data = npy_bytes(np.arange(10, dtype=np.int32))
    server.files["/f/a.npy"] = data
    server.fail_500["/f/a.npy"] = 2
    target = transfer.download_file(f"{server.base_url}/f/a.npy", tmp_path / "a.npy", **FAST)
    assert np.array_equal(np.load(target), np.arange(10))
    assert len(server.requests) == 3


def test_server_errors_beyond_retries_give_up(server, tmp_path):
    server.files["/f/a.npy"] = npy_bytes(np.arange(3))
    server.fail_500["/f/a.npy"] = 10
    with pytest.raises(DassError, match="HTTP 500"):
        transfer.download_file(f"{server.base_url}/f/a.npy", tmp_path / "a.npy", retry=transfer.Retry(retries=2, backoff=0.01,
                                                                                       timeout=5.0))
    assert len(server.requests) == 3  # first try + 2 retries
    assert list(tmp_path.iterdir()) == []


def test_permanent_404_leaves_nothing(server, tmp_path):
    url = f"{server.base_url}/f/missing.npy"
    with pytest.raises(DassError, match=r"missing\.npy.*HTTP 404"):
        transfer.download_file(url, tmp_path / "sub" / "missing.npy", **FAST)
    assert len(server.requests) == 1  # not retried
    assert not (tmp_path / "sub" / "missing.npy").exists()
    assert not (tmp_path / "sub" / "missing.npy.part").exists()


@pytest.mark.parametrize("corrupt, problem", [
    (lambda b: b"NOTNUMPY" + b[8:], "header"),
    (lambda b: b[:-8], "needs"),                      # one int64 short
])
def test_corrupt_npy_refused_and_removed(server, tmp_path, corrupt, problem):
    server.files["/f/x.npy"] = corrupt(npy_bytes(np.arange(6, dtype=np.int64)))
    with pytest.raises(DassError, match=problem):
        transfer.download_file(f"{server.base_url}/f/x.npy", tmp_path / "x.npy", **FAST)
    assert list(tmp_path.iterdir()) == []


def test_dataset_content_checks(server, tmp_path):
    bad_images = dtd_files() | {"test_images.npy": npy_bytes(np.zeros((5, 4, 4, 3), np.float32))}
    serve_dataset(server, "dtd", bad_images)
    with pytest.raises(DassError, match="uint8"):
        download.download_dataset("dtd", tmp_path / "a", server.base_url, **FAST)

    short_labels = dtd_files() | {"test_labels.npy": npy_bytes(np.array([1, 2, 3], np.int64))}
    serve_dataset(server, "dtd", short_labels)
    with pytest.raises(DassError, match="3 labels, but .*test_images.npy holds 5"):
        download.download_dataset("dtd", tmp_path / "b", server.base_url, **FAST)
    assert not (tmp_path / "b" / "dtd" / "test_labels.npy").exists()

    out_of_range = dtd_files() | {"test_labels.npy": npy_bytes(np.array([0, 1, 2, 3, 47]))}
    serve_dataset(server, "dtd", out_of_range)
    with pytest.raises(DassError, match="expected 0..46"):
        download.download_dataset("dtd", tmp_path / "c", server.base_url, **FAST)

    missing_class = dtd_files() | {"train_labels.npy": npy_bytes(np.arange(47) % 46)}
    serve_dataset(server, "dtd", missing_class)
    with pytest.raises(DassError, match="cover 46 classes, expected 47"):
        download.download_dataset("dtd", tmp_path / "d", server.base_url, **FAST)


def test_tiny_imagenet_labels_checked_against_images_in_parent(tmp_path):
    folder = tmp_path / "tiny_imagenet"
    (folder / "labels").mkdir(parents=True)
    np.save(folder / "valid_images.npy", np.zeros((4, 2, 2, 3), np.uint8))
    part = folder / "labels" / "valid_labels.npy.part"
    part.write_bytes(npy_bytes(np.array([0, 1, 2], np.int16)))
    with pytest.raises(DassError, match="3 labels, but .*valid_images.npy holds 4"):
        file_checks.validate_file(part, folder / "labels" / "valid_labels.npy", num_classes=200)


def test_manifest_detects_tampering(server, tmp_path):
    serve_dataset(server, "dtd", dtd_files())
    download.download_dataset("dtd", tmp_path, server.base_url, **FAST)
    path = tmp_path / "dtd" / "test_images.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, still a valid npy: only the hash can tell
    path.write_bytes(bytes(data))
    with pytest.raises(DassError, match="test_images.npy: sha256 .*--force"):
        download.download_dataset("dtd", tmp_path, server.base_url, **FAST)
    download.download_dataset("dtd", tmp_path, server.base_url, force=True, **FAST)
    assert path.read_bytes() == dtd_files()["test_images.npy"]


def test_checkpoint_validated_with_weights_only(server, tmp_path):
    import torch
    buf = io.BytesIO()
    torch.save({"state_dict": {"fc.bias": torch.arange(3.0)}}, buf)
    server.files["/teacher_checkpoint/cub/model_best.pth.tar"] = buf.getvalue()
    server.files["/teacher_checkpoint/dtd/model_best.pth.tar"] = b"not a checkpoint"
    (path,) = download.download_checkpoints(tmp_path, ["cub"], server.base_url, **FAST)
    assert path == tmp_path / "checkpoint" / "teacher" / "cub" / "model_best.pth.tar"
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["state_dict"]["fc.bias"], torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(DassError, match="dtd/model_best.pth.tar"):
        download.download_checkpoints(tmp_path, ["dtd"], server.base_url, **FAST)
    assert not list((tmp_path / "checkpoint" / "teacher").rglob("dtd/*"))
    with pytest.raises(DassError, match="unknown checkpoint"):
        download.download_checkpoints(tmp_path, ["imagenet"], server.base_url)


# --------------------------------------------------------------------------- zip files

def test_preprocessed_zip_downloaded_and_extracted(server, tmp_path):
    members = {"preprocessed/net_info/a.txt": b"alpha", "preprocessed/search/b.bin": b"\x00\x01"}
    server.files["/preprocessed/preprocessed.zip"] = zip_bytes(members)
    zip_path = download.download_preprocessed(tmp_path, server.base_url, **FAST)
    assert zip_path == tmp_path / "preprocessed.zip"
    for name, data in members.items():
        assert (tmp_path / name).read_bytes() == data


def test_corrupt_zip_refused(server, tmp_path):
    data = bytearray(zip_bytes({"a.txt": b"hello world" * 20}))
    data[40] ^= 0xFF  # inside the stored member's bytes: CRC fails
    server.files["/preprocessed/preprocessed.zip"] = bytes(data)
    with pytest.raises(DassError, match="preprocessed.zip: member 'a.txt' fails its CRC"):
        download.download_preprocessed(tmp_path, server.base_url, **FAST)
    assert not (tmp_path / "preprocessed.zip").exists()
    assert not (tmp_path / "a.txt").exists()


@pytest.mark.parametrize("evil", ["../escape.txt", "ok/../../escape.txt", "/abs/escape.txt"])
def test_zip_escaping_member_refused(tmp_path, evil):
    zip_path = tmp_path / "evil.zip"
    zip_path.write_bytes(zip_bytes({"good.txt": b"fine", evil: b"bad"}))
    dest = tmp_path / "dest"
    with pytest.raises(DassError, match="refusing to extract anything"):
        transfer.safe_extract_zip(zip_path, dest)
    assert not dest.exists()
    assert not (tmp_path / "escape.txt").exists()


def test_zip_symlink_member_refused(tmp_path):
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777 << 16)  # S_IFLNK
    zip_path = tmp_path / "link.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("good.txt", b"fine")
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DassError, match="symbolic link"):
        transfer.safe_extract_zip(zip_path, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


# --------------------------------------------------------------------------- scripts

@pytest.mark.parametrize("script, extra", [
    ("download_dataset.py", ["--name", "cub"]),
    ("download_checkpoint.py", ["--names", "dtd"]),
    ("download_preprocessed.py", []),
])
def test_script_404_one_line_exit_2(server, tmp_path, script, extra):
    proc = subprocess.run(
        [sys.executable, str(REPO / "download" / script), "--root", str(tmp_path),
         "--base-url", server.base_url, "--retries", "0", *extra],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "HTTP 404" in lines[0], proc.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
