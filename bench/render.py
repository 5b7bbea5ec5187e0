"""Preview render times: cold (decode + render) and cached (read the stored preview).

    python bench/render.py [--runs 15]

Files: the real chest DICOMs and PNGs in ../shared/data/real-cxr (skipped when absent) and
synthetic DICOMs written to a temporary folder (a 1024x1024 JPEG baseline CR, and a
3000x3000 16-bit image, uncompressed, JPEG-LS and JPEG 2000). Figures:
- first call: a new Python process, modules imported, first render (pydicom loads its
  decoder plugins lazily, so this is the worst case after a worker starts);
- cold: median of renders in a warm process; nothing is cached in-process, so every run
  reads, decodes, windows, resizes and encodes the file;
- cached: median of the cached path as the web app serves it: build the key
  `<sha256[:2]>/<sha256>-<params hash>.png` (the sha256 is already on the Image row) and
  read that file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from any folder

from pydicom.uid import JPEGBaseline8Bit  # noqa: E402

from annotation.imaging import ImageInfo, inspect_image, render  # noqa: E402
from annotation.synthetic import write_chest_dicom  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real-cxr"
PARAMS = {"window": None, "invert": False, "max_side": 1024, "fmt": "png"}
COLD_TARGET_MS, CACHED_TARGET_MS = 100.0, 5.0  # for a 1024x1024 JPEG-compressed CR


def cache_path(cache_dir: Path, sha256: str, params: dict) -> Path:
    """Where a preview lives, as annotation/views/images.py lays it out: the source's
    content hash (fanned out by its first two characters) plus a hash of the parameters."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / sha256[:2] / f"{sha256}-{key}.{params['fmt']}"


def cached_render(path: Path, sha256: str, cache_dir: Path, params: dict) -> bytes:
    target = cache_path(cache_dir, sha256, params)
    try:
        return target.read_bytes()
    except FileNotFoundError:
        data = render(path, **params)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: readers never see half a file
        return data


def median_ms(runs: int, action: Callable[..., object], *args: object, **kwargs: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action(*args, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def first_call_ms(path: Path) -> float:
    """First render in a new process, imports excluded."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from annotation.imaging import render; from pathlib import Path;"
        "t = time.perf_counter(); render(Path(sys.argv[2]), **eval(sys.argv[3]));"
        "print((time.perf_counter() - t) * 1000)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(path), repr(PARAMS)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def sources(scratch: Path) -> list[tuple[str, Path]]:
    found = []
    if REAL.is_dir():
        found += [(f"real {p.name}", p) for p in sorted(REAL.glob("*.dcm"))]
        found += [(f"real {p.name}", p) for p in sorted(REAL.glob("*.png"))]
    else:
        print(f"(no real images at {REAL}: skipped)")
    synthetic = [
        ("synthetic 1024 JPEG baseline CR", dict(size=1024, bits=8, compression="jpeg-baseline")),
        ("synthetic 3000 16-bit uncompressed", dict(size=3000, bits=16)),
        ("synthetic 3000 16-bit JPEG-LS", dict(size=3000, bits=16, compression="jpeg-ls")),
        ("synthetic 3000 16-bit JPEG 2000", dict(size=3000, bits=16, compression="jpeg2000")),
    ]
    for index, (label, options) in enumerate(synthetic):
        path = write_chest_dicom(scratch / f"synthetic-{index}.dcm", modality="CR", **options)
        found.append((label, path))
    return found


def verdict(info: ImageInfo, cold: float, cached: float) -> str:
    """Targets apply to 1024x1024 JPEG-compressed images only."""
    if (info.width, info.height) != (1024, 1024) or info.transfer_syntax != JPEGBaseline8Bit:
        return ""
    return "met" if cold < COLD_TARGET_MS and cached < CACHED_TARGET_MS else "MISSED"


def measure(label: str, path: Path, cache_dir: Path, runs: int) -> str:
    """One table row: first call, cold and cached medians, and the verdict."""
    info = inspect_image(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    first = first_call_ms(path)
    cold = median_ms(runs, render, path, **PARAMS)
    cached_render(path, sha, cache_dir, PARAMS)  # fill the cache once
    cached = median_ms(runs, cached_render, path, sha, cache_dir, PARAMS)
    size, syntax = f"{info.width}x{info.height}", info.transfer_syntax or info.kind
    timings = f"{first:7.1f}ms {cold:7.1f}ms {cached:6.2f}ms"
    return f"{label:38} {size:>9} {syntax:>22} {timings}  {verdict(info, cold, cached)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per figure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        cache_dir = scratch / "renders"
        cache_dir.mkdir()
        print(f"render params: {PARAMS}; cold and cached are medians of {args.runs} runs\n")
        header = f"{'file':38} {'pixels':>9} {'syntax':>22} {'first':>9} {'cold':>9} {'cached':>8}"
        print(f"{header}  target\n{'-' * (len(header) + 8)}")
        for label, path in sources(scratch):
            print(measure(label, path, cache_dir, args.runs), flush=True)
        print(
            f"\ntarget for a 1024x1024 JPEG-compressed CR: cold < {COLD_TARGET_MS:.0f} ms, "
            f"cached < {CACHED_TARGET_MS:.0f} ms"
        )


if __name__ == "__main__":
    main()
