"""dass.hashing: each helper against the same bytes hashed here directly with hashlib (the layouts
written out by hand), so a change of any helper's algorithm -- which would orphan the caches and
shipped assets its values key -- fails here."""
import hashlib
import json

import numpy as np
import torch

from dass import hashing


def sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def test_file_sha256_and_cached_file_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("DASS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "f").write_bytes(b"abc")
    want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 vector
    assert hashing.file_sha256(tmp_path / "f") == hashing.file_hash(tmp_path / "f") == want


def test_json_hashes_sort_keys_and_choose_separators():
    obj = {"b": [1, "x"], "a": {"d": None, "c": True}}
    compact = b'{"a":{"c":true,"d":null},"b":[1,"x"]}'
    spaced = b'{"a": {"c": true, "d": null}, "b": [1, "x"]}'
    assert hashing.json_sha256(obj) == hashlib.sha256(compact).hexdigest()
    assert hashing.json_sha256(obj, compact=False) == hashlib.sha256(spaced).hexdigest()
    assert hashing.json_sha1(obj) == hashlib.sha1(compact).hexdigest()
    # an architecture key: sha1 of the compact JSON (the database's student ids and run folders use it)
    from dass.space import Arch
    assert Arch((1, 2), ((8,), (8, 16))).key() == hashlib.sha1(b'{"depths":[1,2],"widths":[[8],[8,16]]}').hexdigest()[:12]


def test_tensor_dict_sha256_layout():
    sd = {"w": torch.tensor([1.0, -2.0]), "n": torch.tensor(3), "e": torch.zeros(0, 2), "s": "x"}
    want = sha256(b"e", b"torch.float32(0, 2)", b"",
                  b"n", b"torch.int64()", np.int64(3).tobytes(),
                  b"s", b"'x'",
                  b"w", b"torch.float32(2,)", np.array([1.0, -2.0], np.float32).tobytes())
    assert hashing.tensor_dict_sha256(sd) == want


def test_proxy_cache_hashes_layout():
    sd = {"w": torch.tensor([1.0, -2.0]), "h": torch.tensor([0.5], dtype=torch.bfloat16)}
    want = sha256(b"h\0", b"torch.bfloat16|[1]|", np.array([0.5], np.float32).tobytes(),
                  b"w\0", b"torch.float32|[2]|", np.array([1.0, -2.0], np.float32).tobytes())
    assert hashing.proxy_state_sha256(sd) == want
    x, y = torch.tensor([[1.0]]), torch.tensor([2])
    want = sha256(b'{"a": 1}', b"torch.float32|[1, 1]|", np.float32(1.0).tobytes(),
                  b"torch.int64|[1]|", np.int64(2).tobytes())
    assert hashing.proxy_key_sha256({"a": 1}, x, y) == want


class Arrays:  # the ImageArrays fields the dataset hashes read
    def __init__(self, source=None, files=None):
        self.images = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
        self.labels = np.array([0, 1, 1])
        self.name, self.num_classes, self.source, self.files = "toy", 2, source, files

    def __len__(self):
        return 3


def test_dataset_hashes_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("DASS_CACHE_DIR", str(tmp_path / "cache"))
    a = Arrays()
    assert hashing.arrays_sha256(a) == sha256(a.images.tobytes(), a.labels.tobytes())
    head = json.dumps(["toy", 3, 2, [3, 2, 2]]).encode()
    assert hashing.dataset_hash(a) == sha256(head, a.labels.tobytes(), a.images.tobytes())
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"abc")
    f = sha256(b"abc")
    listed = Arrays(source=tmp_path / "d", files=[tmp_path / "d" / "x.bin"])
    assert hashing.dataset_hash(listed) == sha256(head, a.labels.tobytes(), f"x.bin\0{f}\n".encode())
    folder = sha256(f"x.bin\0{f}\n".encode())
    assert hashing.dataset_hash(Arrays(source=tmp_path / "d")) == sha256(head, a.labels.tobytes(), folder.encode())


def test_no_hashlib_outside_hashing():
    from pathlib import Path
    root = Path(hashing.__file__).parent
    users = [str(p.relative_to(root)) for p in root.rglob("*.py") if "import hashlib" in p.read_text()]
    assert users == ["hashing.py"]


def test_named_blobs_hash_is_the_sorted_manifest_of_member_hashes():
    import hashlib
    from dass.hashing import bytes_sha256, named_blobs_sha256
    blobs = {"b.npy": b"\x01\x02", "a.json": b"[]"}
    lines = "".join(f"{n}\0{hashlib.sha256(blobs[n]).hexdigest()}\n" for n in ("a.json", "b.npy"))
    assert named_blobs_sha256(blobs) == hashlib.sha256(lines.encode()).hexdigest()
    assert bytes_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()
