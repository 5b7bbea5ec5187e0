"""Scale: a RadRBench-CXR-sized corpus through import, export and the review page.

    .venv/bin/python bench/scale.py                 # 59,000 cases, ~301,000 steps (several minutes)
    .venv/bin/python bench/scale.py --cases 5000    # a quick run

Generates the corpus itself (RadRBench-style JSONL + small PNGs, MIMIC-like paths so patients are
derived) into a temporary folder, then, each phase in its own process so that each peak memory
is its own: imports it with `import_cases`, exports all four formats (cold render cache, then
warm), and times the review page server-side (Django test client, median of 30 GETs). It uses
its own database (`workbench_scale` on the server of --database-url, dropped and created anew)
and its own media folder, never the development or test databases.

Targets (issue 4): import <= 60 s, export <= 30 s, peak memory <= 1 GB, review page < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"import_s": 60.0, "export_s": 30.0, "peak_mb": 1024.0, "review_ms": 50.0}
STEPS_PER_CASE = 301_000 / 59_000  # RadRBench-CXR: 59K cases, 301K reasoning steps
CASES_PER_IMAGE = 5  # several questions are asked of each film

SIDES = ("right", "left")
FINDINGS = (
    ("pleural effusion", "costophrenic angle is blunted", "costophrenic angle is sharp"),
    ("pneumothorax", "visceral pleural line is seen without lung markings beyond it", "lung markings extend to the chest wall"),
    ("consolidation", "lower zone shows dense airspace opacity with air bronchograms", "lower zone is clear"),
    ("cardiomegaly", "cardiothoracic ratio exceeds 0.5", "cardiothoracic ratio is below 0.5"),
    ("pulmonary edema", "perihilar haziness and Kerley B lines are present", "pulmonary vessels are not engorged"),
    ("atelectasis", "base shows linear opacities with volume loss", "lung volumes are preserved"),
    ("lung lesion", "upper zone contains a well-defined round opacity", "no focal nodule or mass is seen"),
    ("fracture", "ribs show a cortical break", "ribs and clavicles are intact"),
)
LEADS = (
    "Examine the {zone} carefully for signs of {finding}.",
    "To assess for {finding}, look at the {zone}.",
    "Check the {zone}, where {finding} would show first.",
    "Next, review the {zone} for {finding}.",
)
ZONES = ("costophrenic angles", "lung bases", "hila", "apices", "cardiac silhouette", "pleural surfaces", "mediastinum", "bony thorax")
TASKS = ("binary", "single", "multi", "open", "temporal")


def _report(rng: random.Random, present: list[str]) -> str:
    lines = [f"There is a {rng.choice(('small', 'moderate', 'large'))} {rng.choice(SIDES)} {name}." for name in present]
    absent = [f[0] for f in FINDINGS if f[0] not in present]
    lines.append(f"No {rng.choice(absent)}.")
    impression = "; ".join(present) or "no acute cardiopulmonary process"
    return f"FINDINGS: {' '.join(lines)} IMPRESSION: {impression.capitalize()}."


def _steps(rng: random.Random, n: int, present: list[str], answer: str) -> list[str]:
    steps = []
    for _ in range(n - 1):
        name, positive, negative = rng.choice(FINDINGS)
        side = rng.choice(SIDES)
        if rng.random() < 0.4:
            steps.append(rng.choice(LEADS).format(zone=rng.choice(ZONES), finding=name))
        elif name in present:
            steps.append(f"The {side} {positive}, consistent with {name}.")
        else:
            steps.append(f"The {side} {negative}: no {name}.")
    steps.append(f"Therefore the answer is {answer}.")
    return steps


def generate(folder: Path, cases: int, seed: int = 7) -> dict[str, Any]:
    """cases.jsonl and images/ under `folder`; returns counts."""
    import numpy as np
    from PIL import Image

    rng = random.Random(seed)
    images_dir = folder / "images"
    n_images = max(1, cases // CASES_PER_IMAGE)
    paths = []
    base = np.linspace(30, 200, 64, dtype=np.float32)
    for i in range(n_images):
        patient, study = 10_000_000 + i // 3, 50_000_000 + i  # about three films per patient
        relative = f"files/p{str(patient)[:2]}/p{patient}/s{study}/{i:08x}.png"
        target = images_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        noise = np.random.default_rng(i).integers(0, 40, (64, 64), dtype=np.uint8)
        pixels = (base[None, :] * 0.6 + base[:, None] * 0.4).astype(np.uint8) + noise
        Image.fromarray(pixels).save(target, compress_level=1)
        paths.append(relative)
    total_steps = 0
    with (folder / "cases.jsonl").open("w", encoding="utf-8") as out:
        for n in range(cases):
            task = TASKS[n % len(TASKS)] if n % 17 else "temporal"
            present = rng.sample([f[0] for f in FINDINGS], k=rng.choice((0, 1, 1, 2)))
            image = paths[n // CASES_PER_IMAGE % len(paths)]
            record: dict[str, Any] = {"item_id": f"scale-{n:06d}", "dataset_name": "scale", "image_path": [image]}
            name = rng.choice(FINDINGS)[0]
            if task == "binary":
                record["question"] = f"Does this chest X-ray show {name}? Options:\nA) Yes\nB) No"
                record["answer"] = "A" if name in present else "B"
            elif task in ("single", "multi"):
                options = rng.sample([f[0] for f in FINDINGS], k=4)
                letters = "ABCD"
                record["question"] = "Which finding is in this chest X-ray? Options:\n" + "\n".join(
                    f"{letters[i]}) {o.title()}" for i, o in enumerate(options))
                record["answer"] = ", ".join(letters[i] for i in sorted(rng.sample(range(4), 2 if task == "multi" else 1)))
            elif task == "open":
                record["question"] = "What findings are in this chest X-ray?"
                record["answer"] = ", ".join(present) or "No Finding"
            else:
                prior = paths[(n // CASES_PER_IMAGE + 1) % len(paths)]
                record["image_path"] = [prior, image]
                record["question"] = f"Compared with the prior film, has the {name} changed? Options:\nA) Improved\nB) Unchanged\nC) Worsened"
                record["answer"] = rng.choice("ABC")
                record["original_report1"] = _report(rng, present[:1])
                record["original_report2"] = _report(rng, present)
            if task != "temporal":
                record["original_report"] = _report(rng, present)
            steps_wanted = round(STEPS_PER_CASE * (n + 1)) - total_steps
            record["reason_steps"] = _steps(rng, max(2, steps_wanted), present, record["answer"])
            total_steps += len(record["reason_steps"])
            out.write(json.dumps(record) + "\n")
    return {"cases": cases, "steps": total_steps, "images": n_images}


# --- phases, each run in a child process with the bench database ------------------------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reasoner_site.settings")
    import django

    django.setup()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def phase_import(folder: Path) -> dict[str, Any]:
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotation.importing import import_cases

    start = time.perf_counter()
    result = import_cases(folder / "cases.jsonl", source="scale", image_dir=folder / "images")
    seconds = time.perf_counter() - start
    from annotation.models import Image, Step

    return {"import_s": seconds, "imported": result.imported, "rejected": result.rejected,
            "steps": Step.objects.count(), "images": Image.objects.count(), "import_peak_mb": _peak_mb()}


def phase_export(folder: Path) -> dict[str, Any]:
    _django()
    from django.db.models import Value
    from django.db.models.functions import Concat

    from annotation.exporting import ExportOptions, export
    from annotation.models import Chain, Step

    # Everything counts as verified, with a verdict on every step (a mix, so every label rule runs).
    Step.objects.update(verdict="correct")
    Step.objects.filter(position=2).update(verdict="incorrect", text=Concat("text", Value(" (corrected)")))
    Step.objects.filter(position=3).update(verdict="irrelevant")
    Chain.objects.update(status="verified")
    figures: dict[str, Any] = {}
    for run in ("cold", "warm"):
        start = time.perf_counter()
        snapshot = export(ExportOptions(image_size=512), folder / f"export-{run}")
        figures[f"export_{run}_s"] = time.perf_counter() - start
    figures["exported_chains"] = snapshot.counts["chains"]
    figures["export_peak_mb"] = _peak_mb()
    figures["export_mb"] = sum(f["bytes"] for f in snapshot.files) / 1e6
    return figures


def phase_review(folder: Path) -> dict[str, Any]:
    _django()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    from annotation import services
    from annotation.models import Assignment, Chain

    setup_test_environment()
    user, _ = get_user_model().objects.get_or_create(username="scale-reader")
    services.set_role(user, "radiologist")
    chain = Chain.objects.filter(purpose="reference").order_by("-id").first()
    Chain.objects.filter(pk=chain.pk).update(status="in_review")
    Assignment.objects.get_or_create(chain=chain, reader=user)
    client = Client()
    client.force_login(user)
    times = []
    for _ in range(31):
        start = time.perf_counter()
        response = client.get(f"/chains/{chain.uuid}/")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return {"review_ms": statistics.median(times[1:]), "review_p95_ms": sorted(times[1:])[28]}


PHASES = {"import": phase_import, "export": phase_export, "review": phase_review}


def _child(phase: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--folder", str(folder)],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _recreate_database(url: str) -> None:
    import psycopg

    from reasoner_site.database import parse_database_url

    config = parse_database_url(url)
    name = config["NAME"]
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an odd database name {name!r}")
    admin = dict(host=config.get("HOST") or None, port=config.get("PORT") or None,
                 user=config.get("USER") or None, password=config.get("PASSWORD") or None, dbname="template1")
    with psycopg.connect(**{k: v for k, v in admin.items() if v}, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=59_000, help="cases to generate (default 59,000)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/workbench_scale",
                        help="the bench's own database: dropped and created anew")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus and exports")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.folder)))
        return 0
    sys.path.insert(0, str(ROOT))
    _recreate_database(args.database_url)
    folder = Path(tempfile.mkdtemp(prefix="workbench-scale-"))
    env = {**os.environ, "DATABASE_URL": args.database_url, "WORKBENCH_MEDIA_DIR": str(folder / "media"),
           "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "scale-bench-" + "x" * 40,
           "DJANGO_ALLOWED_HOSTS": "testserver"}
    start = time.perf_counter()
    made = generate(folder, args.cases)
    print(f"generated {made['cases']:,} cases, {made['steps']:,} steps, {made['images']:,} images "
          f"in {time.perf_counter() - start:.1f} s under {folder}", flush=True)
    figures: dict[str, Any] = {}
    for phase in PHASES:
        figures.update(_child(phase, folder, env))
        print(f"  {phase} done", flush=True)
    peak = max(figures["import_peak_mb"], figures["export_peak_mb"])
    rows = [
        ("import", f"{figures['import_s']:.1f} s", f"<= {TARGETS['import_s']:.0f} s", figures["import_s"] <= TARGETS["import_s"],
         f"{figures['imported']:,} cases, {figures['steps']:,} steps, {figures['images']:,} images, {figures['rejected']} rejected"),
        ("export (cold)", f"{figures['export_cold_s']:.1f} s", f"<= {TARGETS['export_s']:.0f} s", figures["export_cold_s"] <= TARGETS["export_s"],
         f"{figures['exported_chains']:,} chains x 4 formats, images rendered, {figures['export_mb']:.0f} MB"),
        ("export (warm)", f"{figures['export_warm_s']:.1f} s", f"<= {TARGETS['export_s']:.0f} s", figures["export_warm_s"] <= TARGETS["export_s"],
         "render cache filled"),
        ("peak memory", f"{peak:.0f} MB", f"<= {TARGETS['peak_mb']:.0f} MB", peak <= TARGETS["peak_mb"],
         f"import {figures['import_peak_mb']:.0f} MB, export {figures['export_peak_mb']:.0f} MB (max RSS per process)"),
        ("review page", f"{figures['review_ms']:.1f} ms", f"< {TARGETS['review_ms']:.0f} ms", figures["review_ms"] < TARGETS["review_ms"],
         f"median of 30 GETs (p95 {figures['review_p95_ms']:.1f} ms), server side"),
    ]
    print(f"\n{'figure':<15} {'measured':>10} {'target':>10}  ok   detail")
    for name, value, target, ok, detail in rows:
        print(f"{name:<15} {value:>10} {target:>10}  {'yes' if ok else 'NO ':<4} {detail}")
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
