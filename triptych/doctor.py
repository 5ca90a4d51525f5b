"""``triptych doctor``: what this installation can run, and what each missing piece blocks.

A pure report (``diagnose``) of: Python, torch and its device; the optional extras' modules (found or not,
without importing them); each registered weights file (present, pinned or unpinned, missing) with the metric
variants and methods that load it; the data roots and, per benchmark, whether its manifest is there.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

# module -> (the pip extra that installs it, what cannot run without it): from the modules that import it.
OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    "cv2": ("inpainting, vfi", "DIS flows (ewarp:dis, flolpips:dis, dis-warp), video completion baselines, "
                               "DAVIS / YouTube-VOS and VFI test-set loaders, triptych inpaint"),
    "dlib": ("personalization", "face_sim:dlib, face_div:lpips (the demo's personalization part)"),
    "facenet_pytorch": ("personalization", "face_sim:facenet"),
    "insightface": ("personalization", "face_sim:arcface, face_dist:arcface"),
    "onnxruntime": ("personalization", "face_sim:arcface, face_dist:arcface"),
    "open_clip": ("personalization", "clip_t, clip_i, hpsv2, pickscore, the PhotoMaker pipeline"),
    "timm": ("personalization", "dino"),
    "pytorch_fid": ("personalization", "fid, kid"),
    "transformers": ("personalization", "pickscore, image_reward, the PhotoMaker ID encoder and pipeline"),
    "diffusers": ("generation", "triptych generate (PhotoMaker), generator efficiency"),
    "dvc": ("dataset", "the data pipeline (dvc repro)"),
    "ray": ("scale", "--executor ray"),
}


# The benchmark parameter naming the file (under the data root) that a prepared split has, in this order.
DATA_KEYS = ("manifest", "listing", "standardized")


def _torch() -> dict[str, Any]:
    try:
        import torch
    except ImportError as exc:  # torch is a core dependency: nothing scores without it
        return {"version": None, "error": str(exc), "device": None}
    cuda = torch.cuda.is_available()
    return {"version": torch.__version__, "cuda": cuda, "cuda_version": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if cuda else "cpu", "threads": torch.get_num_threads()}


def _modules() -> list[dict[str, Any]]:
    return [{"module": module, "found": importlib.util.find_spec(module) is not None, "extra": extra,
             "blocks": blocks} for module, (extra, blocks) in sorted(OPTIONAL_MODULES.items())]


def _weights() -> list[dict[str, Any]]:
    from triptych.registry import registry
    from triptych.weights import list_entries

    users: dict[str, list[str]] = {}
    reg = registry()
    for metric in reg.metrics.values():
        for variant in metric.variants.values():
            for name in variant.weights:
                users.setdefault(name, []).append(f"{metric.name}:{variant.name}")
    for method in reg.methods.values():
        for name in method.weights:
            users.setdefault(name, []).append(f"method {method.name}")
    return [{"name": row["name"], "present": row["present"], "pin": row["pin"],
             "pinned": not row["pin"].startswith("unpinned"), "source": row["source"],
             "blocks": sorted(users.get(row["name"], [])) if not row["present"] else []}
            for row in sorted(list_entries(), key=lambda r: r["name"])]


def _data() -> dict[str, Any]:
    from triptych.registry import registry
    from triptych.scoring import datasets_root
    from triptych.weights import triptych_home, weights_dir

    try:
        root: Path | None = datasets_root()
        problem = None
    except Exception as exc:  # noqa: BLE001 - reported, not raised: doctor diagnoses
        root, problem = None, getattr(exc, "message", str(exc))
    benchmarks = []
    for spec in sorted(registry().benchmarks.values(), key=lambda s: s.name):
        key = next((k for k in DATA_KEYS if k in spec.params), None)
        if key is None:
            state, ready = "scores your reference photos (--refs): no data root", True
        elif root is not None and (root / spec.params[key]).exists():
            state, ready = f"{key} {spec.params[key]} present", True
        else:
            state, ready = f"missing {key} {spec.params[key]}: blocks 'score --benchmark {spec.name}'", False
        benchmarks.append({"name": spec.name, "ready": ready, "state": state})
    return {"datasets": str(root) if root is not None else None, "datasets_problem": problem,
            "datasets_from": "TRIPTYCH_DATASETS" if os.environ.get("TRIPTYCH_DATASETS") else "the checkout's datasets/",
            "home": str(triptych_home()), "weights": str(weights_dir()), "benchmarks": benchmarks}


def diagnose() -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    from triptych.weights import is_offline

    import triptych

    return {"python": {"version": platform.python_version(), "executable": sys.executable},
            "triptych": {"version": triptych.__version__, "path": str(Path(triptych.__file__).parent)},
            "offline": is_offline(), "torch": _torch(), "extras": _modules(), "weights": _weights(),
            "data": _data()}


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text: one line per item, each missing piece with what it blocks."""
    t = report["torch"]
    lines = [f"python     {report['python']['version']} ({report['python']['executable']})",
             f"triptych   {report['triptych']['version']} ({report['triptych']['path']})",
             f"torch      {t['version'] or 'MISSING: ' + t.get('error', '')}"
             + (f", device {t['device']}" + (f" (CUDA {t['cuda_version']})" if t.get("cuda") else
                                           ", no CUDA device: --device cuda is unavailable") if t["version"] else ""),
             f"offline    {'yes (TRIPTYCH_OFFLINE / HF_HUB_OFFLINE): weights are never downloaded' if report['offline'] else 'no'}",
             "extras:"]
    for m in report["extras"]:
        lines.append(f"  {'ok     ' if m['found'] else 'MISSING'}  {m['module']:<16}"
                     + ("" if m["found"] else f"  blocks {m['blocks']} (pip install -e '.[{m['extra'].split(',')[0]}]')"))
    lines.append("weights:")
    for w in report["weights"]:
        state = "present" if w["present"] else "MISSING"
        lines.append(f"  {state:<7}  {w['name']:<28} {w['pin']}"
                     + (f"  blocks {', '.join(w['blocks'])}" if w["blocks"] else ""))
    d = report["data"]
    lines.append(f"data       {d['datasets'] or 'NONE: ' + str(d['datasets_problem'])} (from {d['datasets_from']})")
    lines.append(f"home       {d['home']} (weights in {d['weights']})")
    for b in d["benchmarks"]:
        lines.append(f"  {'ok     ' if b['ready'] else 'MISSING'}  {b['name']:<22} {b['state']}")
    if not all(b["ready"] for b in d["benchmarks"]):
        lines.append("  (prepare a missing split with the data pipeline, README 'Data pipeline (DVC)', set "
                     "TRIPTYCH_DATASETS, or pass --data-root)")
    return lines
