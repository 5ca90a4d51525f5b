"""The weights manager: pinned and trust-on-first-use digests, the cache, offline mode, imports, safe loading.

Small files made here stand in for real checkpoints; a test-only registry names them through
``TRIPTYCH_WEIGHTS_EXTRA`` and a local HTTP server plays the download host, so every test runs offline.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from conftest import REPO
from triptych import weights as w
from triptych.errors import InputError, TriptychError, UnknownNameError

PACKAGED_YAML = Path(w.__file__).parent / "data" / "weights.yaml"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Server:
    """A local download host: serves a folder and counts the requests it gets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A fresh TRIPTYCH_HOME, a served folder, and a test registry of small real files."""
    for var in ("TRIPTYCH_OFFLINE", "HF_HUB_OFFLINE", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    home = tmp_path / "home"
    monkeypatch.setenv("TRIPTYCH_HOME", str(home))
    served = tmp_path / "served"
    served.mkdir()
    server = _Server(served)

    # Real files of the kinds the project loads.
    tiny = served / "tiny.safetensors"
    save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(tiny))
    amt_like = served / "amt-like.pth"
    torch.save({"state_dict": {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}}, amt_like)
    other = served / "other.safetensors"
    save_file({"w": torch.zeros(2, 3)}, str(other))
    (served / "login.html").write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    member = served / "det_tiny.safetensors"
    save_file({"d": torch.ones(3)}, str(member))
    with zipfile.ZipFile(served / "pack.zip", "w") as bundle:
        bundle.write(member, "det_tiny.safetensors")
        bundle.writestr("README.txt", "a model pack")

    entries = {
        "t_pinned": {
            "description": "a pinned safetensors file", "urls": [f"{server.url}/tiny.safetensors"],
            "filename": "tiny.safetensors", "size": tiny.stat().st_size, "licence": "test",
            "sha256": _sha(tiny), "sha256_source": "computed by the test", "format": "safetensors",
            "container_key": None, "source": "download"},
        "t_unpinned": {
            "description": "an unpinned AMT-like checkpoint", "urls": [f"{server.url}/amt-like.pth"],
            "filename": "amt-like.pth", "size": None, "licence": "test", "sha256": None,
            "sha256_source": None, "format": "pth", "container_key": "state_dict", "source": "download",
            "architecture": {"callable": "torch.nn:Linear", "args": {"in_features": 2, "out_features": 2}}},
        "t_wrong_bytes": {
            "description": "its URL serves a different file", "urls": [f"{server.url}/other.safetensors"],
            "filename": "tiny.safetensors", "size": None, "licence": "test", "sha256": _sha(tiny),
            "sha256_source": "computed by the test", "format": "safetensors", "container_key": None,
            "source": "download"},
        "t_html": {
            "description": "its URL serves a login page", "urls": [f"{server.url}/login.html"],
            "filename": "model.pth", "size": None, "licence": "test", "sha256": None, "sha256_source": None,
            "format": "pth", "container_key": None, "source": "download"},
        "t_member": {
            "description": "a file inside a zip pack", "urls": [f"{server.url}/pack.zip"],
            "archive_member": "det_tiny.safetensors", "filename": "det_tiny.safetensors", "size": None,
            "licence": "test", "sha256": _sha(member), "sha256_source": "computed by the test",
            "format": "safetensors", "container_key": None, "source": "download"},
        "t_archive_pinned": {
            "description": "an ONNX file inside a zip whose digest alone is published", "urls": [f"{server.url}/pack.zip"],
            "archive_member": "README.txt", "archive_sha256": _sha(served / "pack.zip"),
            "archive_sha256_source": "computed by the test", "filename": "model.onnx", "size": None, "licence": "test",
            "sha256": None, "sha256_source": None, "format": "onnx", "container_key": None, "source": "download"},
        "t_no_package": {
            "description": "ships in a package that is not installed", "urls": ["https://pypi.org/"],
            "filename": "x.dat", "size": None, "licence": "test", "sha256": None, "sha256_source": None,
            "format": "dat", "container_key": None, "source": "wheel", "package": "triptych-no-such-package",
            "package_version": "1.0", "path": "triptych_no_such_package/x.dat"},
    }
    extra = tmp_path / "extra_weights.yaml"
    extra.write_text(yaml.safe_dump(entries, sort_keys=False))
    monkeypatch.setenv("TRIPTYCH_WEIGHTS_EXTRA", str(extra))
    yield {"home": home, "server": server, "tiny": tiny, "amt_like": amt_like, "other": other,
           "member": member, "tmp": tmp_path}
    server.close()


def _cached(env, name: str, filename: str) -> Path:
    return env["home"] / "weights" / name / filename


def _no_temp_files(folder: Path) -> bool:
    return not folder.exists() or not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- the packaged registry ----------------------------------------------------------------------------------

def test_every_packaged_entry_has_the_required_fields_and_well_formed_hashes():
    raw = yaml.safe_load(PACKAGED_YAML.read_text())
    top_level = re.findall(r"^([a-z0-9_]+):", PACKAGED_YAML.read_text(), flags=re.M)
    assert len(top_level) == len(set(top_level)) == len(raw), "a name is declared twice"
    for name, entry in raw.items():
        for field in ("description", "urls", "filename", "size", "licence", "sha256", "sha256_source", "format",
                      "container_key", "source"):
            assert field in entry, (name, field)
        assert entry["source"] in ("download", "wheel") and entry["urls"], name
        if entry["sha256"] is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), name
            assert entry["sha256_source"], name
        else:
            assert entry["sha256_source"] is None, name
        if entry.get("sha256_prefix"):
            assert entry["sha256_prefix_source"], name
            assert entry["sha256"] is None or entry["sha256"].startswith(entry["sha256_prefix"]), name
        if entry["source"] == "wheel":
            assert entry["package"] and entry["package_version"] and entry["path"].endswith(entry["filename"])
            assert entry["sha256"] and entry["package"] in entry["sha256_source"], name
    specs = w.weights_registry()  # the parser accepts every entry
    assert set(raw) <= set(specs)
    expected = {"i3d_rgb_imagenet", "inception_fid", "clip_vit_b32_openai", "dino_vits16", "arcface_w600k_r50",
                "scrfd_det_10g", "raft_large_c_t_skht_v2", "lpips_backbone_alex", "lpips_backbone_vgg16",
                "lpips_lin_alex_v0_1", "lpips_lin_vgg_v0_1", "amt_s", "amt_l", "amt_g", "e2fgvi", "e2fgvi_hq",
                "photomaker_v1", "photomaker_v2", "sdxl_base_1_0", "dlib_face_recognition_resnet_v1",
                "dlib_shape_predictor_5", "dlib_shape_predictor_68", "dlib_mmod_human_face_detector",
                "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"}
    assert expected <= set(raw)
    assert specs["amt_s"].container_key == "state_dict" and specs["photomaker_v1"].container_key == "id_encoder"
    assert specs["i3d_rgb_imagenet"].container_key is None and specs["e2fgvi"].container_key is None
    # A torch.hub file name "-<8+ hex>." publishes the head of the digest: the entry records and checks it.
    prefixed = 0
    for spec in specs.values():
        found = re.search(r"-([a-f0-9]{8,})\.", spec.urls[0].rsplit("/", 1)[-1])
        if spec.source == "download" and found:
            prefixed += 1
            assert spec.sha256_prefix == found.group(1), spec.name
            assert spec.sha256 is None or spec.sha256.startswith(found.group(1)), spec.name
    assert prefixed >= 4  # inception_fid, raft, alexnet, vgg16


def test_bad_registry_entries_are_refused(tmp_path, monkeypatch):
    good = {"description": "x", "urls": ["https://example.org/x.pt"], "filename": "x.pt", "size": None,
            "licence": "x", "sha256": None, "sha256_source": None, "format": "pt", "container_key": None,
            "source": "download"}
    with pytest.raises(TriptychError, match="64 lower-case hex"):
        w.parse_registry(yaml.safe_dump({"bad": {**good, "sha256": "ABC", "sha256_source": "s"}}), "t.yaml")
    with pytest.raises(TriptychError, match="lacks required key\\(s\\) licence"):
        w.parse_registry(yaml.safe_dump({"bad": {k: v for k, v in good.items() if k != "licence"}}), "t.yaml")
    with pytest.raises(TriptychError, match="does not start with its published prefix"):
        w.parse_registry(yaml.safe_dump({"bad": {**good, "sha256": "0" * 64, "sha256_source": "s",
                                                 "sha256_prefix": "12345678", "sha256_prefix_source": "s"}}),
                         "t.yaml")
    extra = tmp_path / "dup.yaml"
    extra.write_text(yaml.safe_dump({"amt_s": good}))
    monkeypatch.setenv("TRIPTYCH_WEIGHTS_EXTRA", str(extra))
    with pytest.raises(TriptychError, match="already declared in triptych/data/weights.yaml"):
        w.weights_registry()


# --- missing, import, resolve, verify -----------------------------------------------------------------------

def test_missing_file_error_names_entry_path_url_hash_and_import_command(env):
    with pytest.raises(w.MissingWeightsError) as info:
        w.resolve("t_pinned")
    text = str(info.value)
    assert "'t_pinned'" in text
    assert str(_cached(env, "t_pinned", "tiny.safetensors")) in text
    assert f"{env['server'].url}/tiny.safetensors" in text
    assert _sha(env["tiny"]) in text
    assert "triptych weights import t_pinned PATH" in text
    with pytest.raises(w.MissingWeightsError, match=r"sha256: unpinned"):
        w.resolve("t_unpinned")
    # A packaged entry gives the same facts.
    with pytest.raises(w.MissingWeightsError) as info:
        w.resolve("inception_fid")
    assert "pt_inception-2015-12-05-6726825d.pth" in str(info.value)
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in str(info.value)
    with pytest.raises(UnknownNameError, match="did you mean 't_pinned'"):
        w.resolve("t_pined")


def test_import_resolve_verify_round_trip(env):
    dest = w.import_file("t_pinned", env["tiny"])
    assert dest == _cached(env, "t_pinned", "tiny.safetensors") and dest.read_bytes() == env["tiny"].read_bytes()
    assert w.resolve("t_pinned") == dest
    report = w.verify("t_pinned")
    assert report["status"] == "ok" and report["sha256"] == _sha(env["tiny"]) and report["pinned"] == "registry"
    assert w.describe("t_pinned") == {"name": "t_pinned", "path": str(dest), "sha256": _sha(env["tiny"]),
                                      "registered": True}
    state = w.load("t_pinned")
    assert torch.equal(state["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert _no_temp_files(dest.parent)


def test_mismatching_file_is_refused_on_import(env):
    with pytest.raises(w.ChecksumMismatchError) as info:
        w.import_file("t_pinned", env["other"])
    text = str(info.value)
    assert _sha(env["other"]) in text and _sha(env["tiny"]) in text and "expected" in text
    folder = _cached(env, "t_pinned", "tiny.safetensors").parent
    assert not _cached(env, "t_pinned", "tiny.safetensors").exists() and _no_temp_files(folder)


def test_tampered_cache_file_is_refused_on_resolve(env):
    dest = w.import_file("t_pinned", env["tiny"])
    data = bytearray(dest.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped byte
    dest.write_bytes(bytes(data))
    with pytest.raises(w.ChecksumMismatchError) as info:
        w.resolve("t_pinned")
    assert hashlib.sha256(bytes(data)).hexdigest() in str(info.value) and _sha(env["tiny"]) in str(info.value)
    dest.write_bytes(bytes(data) + b"x")  # and a wrong size
    with pytest.raises(w.ChecksumMismatchError, match="bytes, expected"):
        w.verify("t_pinned")


def test_trust_on_first_use_then_refusal_of_a_different_file(env, tmp_path):
    dest = w.import_file("t_unpinned", env["amt_like"])
    pins = json.loads((env["home"] / "weights" / "pins.json").read_text())
    assert pins["t_unpinned"]["sha256"] == _sha(env["amt_like"])
    assert "imported from" in pins["t_unpinned"]["origin"]
    assert w.verify("t_unpinned")["pinned"] == "trust-on-first-use"
    assert "first use" in w.pin_label(w.get_spec("t_unpinned"))

    different = tmp_path / "different.pth"
    torch.save({"state_dict": {"weight": torch.full((2, 2), 3.0), "bias": torch.ones(2)}}, different)
    with pytest.raises(w.ChecksumMismatchError, match="pins.json") as info:
        w.import_file("t_unpinned", different)
    assert _sha(different) in str(info.value) and _sha(env["amt_like"]) in str(info.value)
    assert dest.read_bytes() == env["amt_like"].read_bytes()  # the trusted copy is untouched

    dest.write_bytes(different.read_bytes())  # swapping the cached file is caught too
    with pytest.raises(w.ChecksumMismatchError):
        w.resolve("t_unpinned")


def test_a_file_dropped_into_the_cache_is_trusted_on_first_resolve(env):
    dest = _cached(env, "t_unpinned", "amt-like.pth")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(env["amt_like"].read_bytes())
    assert w.resolve("t_unpinned") == dest
    assert w.read_pins()["t_unpinned"]["origin"].startswith("found in the cache")


# --- fetch -----------------------------------------------------------------------------------------------------

def test_offline_fetch_is_refused_without_touching_the_network(env, monkeypatch):
    for var in ("TRIPTYCH_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
        with pytest.raises(w.MissingWeightsError) as info:
            w.fetch("t_pinned")
        assert "offline" in str(info.value) and "triptych weights import t_pinned PATH" in str(info.value)
        monkeypatch.delenv(var)
    assert env["server"].requests == []
    assert not _cached(env, "t_pinned", "tiny.safetensors").exists()


def test_fetch_downloads_verifies_and_moves_into_place(env):
    dest = w.fetch("t_pinned")
    assert dest.read_bytes() == env["tiny"].read_bytes() and env["server"].requests == ["/tiny.safetensors"]
    assert w.fetch("t_pinned") == dest and len(env["server"].requests) == 1  # cached: no second download
    assert _no_temp_files(dest.parent)


def test_fetch_of_an_unpinned_entry_records_the_digest_and_its_url(env):
    dest = w.fetch("t_unpinned")
    pin = w.read_pins()["t_unpinned"]
    assert pin["sha256"] == _sha(dest) and pin["origin"] == f"{env['server'].url}/amt-like.pth"
    assert torch.equal(w.load("t_unpinned")["bias"], torch.zeros(2))  # unwrapped by its container key


def test_fetch_refuses_wrong_bytes_and_html_pages(env):
    with pytest.raises(w.ChecksumMismatchError) as info:
        w.fetch("t_wrong_bytes")
    assert _sha(env["other"]) in str(info.value) and _sha(env["tiny"]) in str(info.value)
    assert not _cached(env, "t_wrong_bytes", "tiny.safetensors").exists()
    assert _no_temp_files(env["home"] / "weights" / "t_wrong_bytes")
    with pytest.raises(w.MissingWeightsError, match="HTML page"):
        w.fetch("t_html")
    assert "t_html" not in w.read_pins()  # nothing was trusted


def test_fetch_takes_a_member_out_of_a_zip_pack(env):
    dest = w.fetch("t_member")
    assert dest.name == "det_tiny.safetensors" and dest.read_bytes() == env["member"].read_bytes()
    assert _no_temp_files(dest.parent)


def test_a_member_is_pinned_through_its_archives_published_digest(env):
    """An ONNX file has no state dict to check: it is trusted on first use only when it comes out of an archive
    whose published digest matched; the bare file is refused, and so is an archive with other bytes."""
    bare = env["tmp"] / "model.onnx"
    bare.write_text("a model pack")
    with pytest.raises(w.UntrustedWeightsError, match="only the archive's sha256 is published"):
        w.import_file("t_archive_pinned", bare)
    altered = env["tmp"] / "altered.zip"
    with zipfile.ZipFile(altered, "w") as bundle:
        bundle.writestr("README.txt", "a model pack")
    with pytest.raises(w.ChecksumMismatchError, match="the archive .* does not match"):
        w.import_file("t_archive_pinned", altered)
    dest = w.fetch("t_archive_pinned")
    assert dest.read_text() == "a model pack"
    assert w.read_pins()["t_archive_pinned"]["sha256"] == _sha(dest)


# --- wheel-shipped files -----------------------------------------------------------------------------------------

def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed("face-recognition-models"),
                    reason="face-recognition-models is not installed (pip install -e .[personalization])")
def test_dlib_model_resolves_inside_the_installed_wheel_with_its_pinned_hash(tmp_path):
    code = ("import sys\n"
            "from triptych import weights as w\n"
            "print(w.resolve('dlib_face_recognition_resnet_v1'))\n"
            "assert 'face_recognition_models' not in sys.modules, 'the package was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={"TRIPTYCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout.strip()
    path = Path(out)
    dist = importlib.metadata.distribution("face-recognition-models")
    assert path == Path(str(dist.locate_file("face_recognition_models/models/"
                                             "dlib_face_recognition_resnet_model_v1.dat")))
    spec = w.get_spec("dlib_face_recognition_resnet_v1")
    assert w.sha256_file(path) == spec.sha256 == "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    assert not (tmp_path / "weights").exists()  # nothing copied, nothing pinned


def test_wheel_entry_without_its_package_names_the_pip_command(env):
    with pytest.raises(w.MissingWeightsError) as info:
        w.resolve("t_no_package")
    assert "pip install 'triptych-no-such-package==1.0'" in str(info.value)
    with pytest.raises(TriptychError, match="not imported into the cache"):
        w.import_file("t_no_package", env["tiny"])


# --- loading -------------------------------------------------------------------------------------------------

def test_weights_only_loading_unwraps_the_container_key(tmp_path):
    path = tmp_path / "amt.pth"
    torch.save({"state_dict": {"a.weight": torch.eye(2)}, "epoch": 3}, path)
    assert torch.equal(w.load_state_dict(path, "state_dict")["a.weight"], torch.eye(2))
    with pytest.raises(TriptychError, match="no container key 'id_encoder'.*state_dict, epoch"):
        w.load_state_dict(path, "id_encoder")
    with pytest.raises(TriptychError, match="not tensors: state_dict, epoch.*container key"):
        w.load_state_dict(path)
    flat = tmp_path / "i3d.pt"
    torch.save({"conv.weight": torch.ones(1)}, flat)
    assert list(w.load_state_dict(flat)) == ["conv.weight"]
    st = tmp_path / "x.safetensors"
    save_file({"k": torch.ones(2)}, str(st))
    assert torch.equal(w.load_state_dict(st)["k"], torch.ones(2))
    with pytest.raises(TriptychError, match="unsupported weights format '.npz'"):
        (tmp_path / "x.npz").write_bytes(b"0")
        w.load_state_dict(tmp_path / "x.npz")


class _Payload:
    """Unpickling this would run ``open(marker, 'w')``: weights_only must refuse it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_with_arbitrary_objects_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"a": torch.ones(1)}, "payload": _Payload(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(TriptychError, match=r"evil\.pth: refused under torch\.load\(weights_only=True\)"):
        w.load_state_dict(path, "state_dict")
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's own deprecation notices
def test_torchscript_archives_are_named_as_such(tmp_path):
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.ones(1, 2)), str(path))
    with pytest.raises(TriptychError, match="TorchScript archive"):
        w.load_state_dict(path)


# --- provenance --------------------------------------------------------------------------------------------------

def test_describe_user_file_flags_user_files_and_recognizes_registered_hashes(env, tmp_path):
    own = tmp_path / "mine.safetensors"
    save_file({"z": torch.ones(1)}, str(own))
    assert w.describe_user_file(own) == {"name": None, "path": str(own), "sha256": _sha(own),
                                         "registered": False, "user_supplied": True}
    copy = tmp_path / "renamed.bin"
    copy.write_bytes(env["tiny"].read_bytes())
    assert w.describe_user_file(copy) == {"name": "t_pinned", "path": str(copy), "sha256": _sha(env["tiny"]),
                                          "registered": True}
    w.import_file("t_unpinned", env["amt_like"])  # a first-use pin also names the file
    assert w.describe_user_file(env["amt_like"])["name"] == "t_unpinned"
    with pytest.raises(InputError):
        w.describe_user_file(tmp_path / "absent.pth")


# --- the CLI -------------------------------------------------------------------------------------------------------

def test_cli_list_import_path_verify_and_errors(env, run_cli):
    code, out, _ = run_cli("weights", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["t_pinned"]["present"] is False and rows["t_unpinned"]["pin"] == "unpinned"
    assert rows["inception_fid"]["pin"].startswith("sha256 6726825d")
    code, out, _ = run_cli("weights", "list")
    assert code == 0 and "t_pinned" in out

    code, out, err = run_cli("weights", "path", "t_pinned")
    assert code == 2 and out == "" and "error:" in err and "triptych weights import t_pinned PATH" in err

    code, _, err = run_cli("weights", "import", "t_pinned", env["tiny"])
    assert code == 0 and "imported" in err
    code, out, _ = run_cli("weights", "path", "t_pinned")
    assert code == 0 and out == f"{_cached(env, 't_pinned', 'tiny.safetensors')}\n"
    code, out, _ = run_cli("weights", "verify", "t_pinned")
    assert code == 0 and out.startswith("ok\tt_pinned\t" + _sha(env["tiny"]))

    code, _, err = run_cli("weights", "import", "t_pinned", env["other"])
    assert code == 2 and "does not match" in err
    _cached(env, "t_pinned", "tiny.safetensors").write_bytes(env["other"].read_bytes())
    code, _, err = run_cli("weights", "verify")
    assert code == 2 and "t_pinned" in err

    code, _, err = run_cli("weights", "path", "no_such_weights")
    assert code == 2 and "unknown weights" in err


def test_cli_fetch_offline_exits_2(env, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    code, _, err = run_cli("weights", "fetch", "t_pinned")
    assert code == 2 and "offline" in err and env["server"].requests == []
    monkeypatch.delenv("TRIPTYCH_OFFLINE")
    code, _, err = run_cli("weights", "fetch", "t_pinned")
    assert code == 0 and str(_cached(env, "t_pinned", "tiny.safetensors")) in err


# --- first-use pins: strict architecture, no pickles, unpin ------------------------------------------------------

@pytest.mark.parametrize("name,fixture", [("e2fgvi", "e2fgvi_keys.json"), ("e2fgvi_hq", "e2fgvi_hq_keys.json")])
def test_an_unpinned_entry_architecture_has_the_published_keys_and_shapes(name, fixture, fixtures_dir):
    expected, ignored = w._architecture_state(w.get_spec(name))
    published = json.loads((fixtures_dir / "inpainting_models" / fixture).read_text())["keys"]
    assert [(k, tuple(v.shape)) for k, v in expected.items()] == [(k["key"], tuple(k["shape"])) for k in published]
    assert ignored == ()


def test_every_unpinned_state_dict_entry_declares_an_architecture_that_builds():
    unpinned = [s for s in w.weights_registry().values() if s.sha256 is None and s.format in w.STATE_DICT_FORMATS]
    assert {s.name for s in unpinned} >= {"i3d_rgb_imagenet", "e2fgvi", "amt_s", "amt_l", "amt_g", "photomaker_v1",
                                          "dino_vits16", "dinov2_vits14", "facenet_vggface2"}
    for spec in unpinned:
        if w.BESIDE in dict(spec.architecture_args).values():  # built from the config.json beside the file
            with pytest.raises(TriptychError, match="read from the files beside the weights"):
                w._architecture_state(spec)
            continue
        expected, _ = w._architecture_state(spec)
        assert len(expected) > 10, spec.name


def _amt_rule_checkpoint(size: str, path: Path) -> Path:
    """AMT weights of the real architecture built by the weights rule (docs/weights_rule.md),
    saved as the published checkpoints are: a torch zip holding {'state_dict': ...}."""
    from triptych.baselines.amt import build_amt
    from triptych.weights_rule import rule_state_dict

    torch.save({"state_dict": rule_state_dict(build_amt(size), 0, 1.0)}, path)
    return path


def test_rule_weights_pin_after_a_strict_load_and_unpin_removes_the_pin_and_file(tmp_path, monkeypatch, run_cli):
    home = tmp_path / "home"
    monkeypatch.setenv("TRIPTYCH_HOME", str(home))
    small = _amt_rule_checkpoint("S", tmp_path / "amt-s.pth")
    code, _, err = run_cli("weights", "import", "amt_l", small)  # AMT-S weights do not fit AMT-L
    assert code == 2 and "does not load strictly into triptych.baselines.amt:build_amt" in err, err
    assert not (home / "weights/pins.json").exists() and not (home / "weights/amt_l/amt-l.pth").exists()

    code, _, err = run_cli("weights", "import", "amt_s", small)
    assert code == 0, err
    pin = w.read_pins()["amt_s"]
    assert pin["sha256"] == _sha(small)
    assert w.load("amt_s").keys() == torch.load(small, weights_only=True)["state_dict"].keys()

    code, out, err = run_cli("weights", "unpin", "amt_s")
    assert code == 0, err
    cached = home / "weights/amt_s/amt-s.pth"
    assert out.startswith(f"unpinned\tamt_s\tsha256 {pin['sha256']}") and str(cached) in out
    assert "amt_s" not in w.read_pins() and not cached.exists()
    record = json.loads((home / "weights/unpins.jsonl").read_text().splitlines()[-1])
    assert record["name"] == "amt_s" and record["pin"] == pin and record["removed_file"] == str(cached)
    code, _, err = run_cli("weights", "unpin", "amt_s")
    assert code == 2 and "no trust-on-first-use pin" in err


def test_a_pickle_carrying_code_is_refused_unrun_and_unpinned_on_fetch_import_and_in_the_cache(env, tmp_path):
    marker = tmp_path / "ran.txt"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bare = tmp_path / "bare.pth"
    bare.write_bytes(__import__("pickle").dumps({"state_dict": {"weight": Payload()}}, protocol=2))
    zipped = tmp_path / "zipped.pth"
    torch.save({"state_dict": {"weight": Payload(), "bias": torch.zeros(2)}}, zipped)
    for evil, words in ((bare, "bare pickle"), (zipped, "weights_only=True")):
        with pytest.raises(w.UntrustedWeightsError, match=words):
            w.import_file("t_unpinned", evil)
        dest = _cached(env, "t_unpinned", "amt-like.pth")  # dropped into the cache by hand
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(evil.read_bytes())
        with pytest.raises(w.UntrustedWeightsError, match=words):
            w.resolve("t_unpinned")
        dest.unlink()
    assert not marker.exists() and w.read_pins() == {}


def test_a_user_file_rewritten_at_the_same_path_is_loaded_anew(tmp_path):
    """per_file_cache keys a loader's cache on the user file's path, size and mtime: the same file is loaded
    once, a rewritten one again (never the stale network)."""
    from triptych.weights import per_file_cache

    loads = []

    @per_file_cache(maxsize=2)
    def load_network(name: str = "net", trunk=None):
        loads.append(name)
        return Path(trunk).read_text() if trunk else "registry"

    user = tmp_path / "trunk.pt"
    user.write_text("first")
    assert load_network(trunk=user) == "first" and load_network("net", user) == "first"
    assert len(loads) == 1
    user.write_text("second, longer")
    os.utime(user, ns=(user.stat().st_atime_ns, user.stat().st_mtime_ns + 10**9))
    assert load_network(trunk=user) == "second, longer" and len(loads) == 2
    assert load_network() == "registry" and load_network() == "registry" and len(loads) == 3


def test_every_cached_network_loader_with_a_user_trunk_uses_per_file_cache():
    """No loader that takes ``trunk`` (a user's file) is cached by a plain lru_cache keyed on the path alone."""
    import ast

    offenders = []
    for path in [*REPO.glob("metrics/*.py"), *REPO.glob("triptych/**/*.py"), *REPO.glob("baselines/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(a.arg == "trunk" for a in node.args.args):
                names = {ast.unparse(d) for d in node.decorator_list}
                if any("lru_cache" in n or n.endswith("cache") and "per_file_cache" not in n for n in names):
                    offenders.append(f"{path.relative_to(REPO)}:{node.name}")
    assert offenders == []
