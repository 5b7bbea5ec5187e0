"""Demo data: users for each role and a dozen cases with images the code draws itself.

The cases go through the same importer as real data, as RadRBench-style records.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation import predictions, services, synthetic
from annotation.importing import ImportResult, import_cases
from annotation.models import Case, Chain, ModelRun, Role

SOURCE = "demo"
USERS = [
    ("alice", Role.RADIOLOGIST, "alice-reads-films"),
    ("bob", Role.RADIOLOGIST, "bob-reads-films"),
    ("carol", Role.CURATOR, "carol-curates-data"),
    ("dave", Role.RESEARCHER, "dave-trains-models"),
]

_EFFUSION = "FINDINGS: Moderate right pleural effusion with adjacent basilar atelectasis. No pneumothorax. Heart size is normal. IMPRESSION: Moderate right pleural effusion."
_NORMAL = "FINDINGS: The lungs are clear. No pleural effusion or pneumothorax. Cardiomediastinal silhouette is normal. No acute osseous abnormality. IMPRESSION: No acute cardiopulmonary process."
_CARDIO = "FINDINGS: The heart is enlarged. Mild pulmonary vascular congestion and interstitial edema. Small bilateral pleural effusions. No focal consolidation. IMPRESSION: Cardiomegaly with mild pulmonary edema."
_NODULE = "FINDINGS: A 1.5 cm nodule projects over the left upper lobe. Lungs otherwise clear. No effusion. IMPRESSION: Left upper lobe nodule; CT recommended."
_PNEUMONIA = "FINDINGS: Right lower lobe consolidation, concerning for pneumonia. No pneumothorax. Heart size normal. IMPRESSION: Right lower lobe pneumonia."
_DEVICES = "FINDINGS: Endotracheal tube terminates 4 cm above the carina. Nasogastric tube courses below the diaphragm. Left chest tube in place. No pneumothorax. IMPRESSION: Support devices in standard position."

CASES: list[dict[str, Any]] = [
    {"item_id": "demo-001", "task": "binary", "image": ("dicom", 1, "effusion"),
     "question": "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No", "answer": "A", "answer_content": "Yes",
     "report": _EFFUSION,
     "steps": ["To decide whether a pleural effusion is present, examine both costophrenic angles and the lung bases for blunting or a meniscus.",
               "The right costophrenic angle is blunted with a meniscus-shaped opacity at the right base, consistent with a moderate effusion.",
               "The left costophrenic angle is sharp.",
               "The heart appears enlarged.",
               "Therefore the chest X-ray shows a pleural effusion: the answer is A) Yes."]},
    {"item_id": "demo-002", "task": "binary", "image": ("png", 2, None),
     "question": "Does this chest X-ray show pneumothorax? Options:\nA) Yes\nB) No", "answer": "B", "answer_content": "No",
     "report": _NORMAL,
     "steps": "To assess for pneumothorax, look for a visceral pleural line with absent lung markings beyond it, especially at the apices. Lung markings extend to the chest wall on both sides. No pleural line is seen. Therefore there is no pneumothorax: the answer is B) No."},
    {"item_id": "demo-003", "task": "binary", "image": ("dicom_mono1", 3, None),
     "question": "Does this chest X-ray show support devices? Options:\nA) Yes\nB) No", "answer": "A", "answer_content": "Yes",
     "report": _DEVICES,
     "steps": ["Support devices include tubes, lines and cardiac devices; trace each linear radiopaque structure.",
               "An endotracheal tube terminates above the carina.",
               "A nasogastric tube passes below the diaphragm.",
               "A left chest tube is present.",
               "Support devices are present: the answer is A) Yes."]},
    {"item_id": "demo-004", "task": "single", "image": ("dicom", 4, "effusion"),
     "question": "Which finding is in this chest X-ray? Options:\nA) Pneumothorax\nB) Pleural Effusion\nC) Fracture\nD) Cardiomegaly", "answer": "B",
     "report": _EFFUSION,
     "steps": ["The question asks which of four findings is present: examine the pleura, the bones and the heart.",
               "A) No pleural line or absent lung markings: no pneumothorax.",
               "B) The right costophrenic angle is blunted by fluid: pleural effusion is present.",
               "C) The ribs and clavicles are intact: no fracture.",
               "D) The cardiothoracic ratio is below 0.5: no cardiomegaly.",
               "The answer is B) Pleural Effusion."]},
    {"item_id": "demo-005", "task": "single", "image": ("png", 5, "nodule"),
     "question": "Which finding is in this chest X-ray? Options:\nA) Edema\nB) Lung Lesion\nC) Pneumonia\nD) Atelectasis", "answer": "B",
     "report": _NODULE,
     "steps": ["Compare the four options by looking at the lung parenchyma and the hila.",
               "A) The interstitium is not thickened and there are no Kerley lines: no edema.",
               "B) A well-defined round opacity projects over the left upper zone: a lung lesion.",
               "C) There is no lobar consolidation: no pneumonia.",
               "D) Lung volumes are preserved: no atelectasis.",
               "The answer is B) Lung Lesion."]},
    {"item_id": "demo-006", "task": "single", "image": ("dicom", 6, None),
     "question": "Which finding is in this chest X-ray? Options:\nA) Pneumonia\nB) Pneumothorax\nC) Support Devices\nD) Enlarged Cardiomediastinum", "answer": "A",
     "report": _PNEUMONIA,
     "steps": ["Examine the lungs, pleura, mediastinum and any lines or tubes.",
               "A) Dense consolidation in the right lower zone with air bronchograms suggests pneumonia.",
               "B) No pleural line: no pneumothorax.",
               "C) No tubes or lines are seen.",
               "D) The mediastinum is of normal width.",
               "The answer is A) Pneumonia."]},
    {"item_id": "demo-007", "task": "multi", "image": ("dicom", 7, "cardiomegaly"),
     "question": "Which findings are in this chest X-ray? Options:\nA) Cardiomegaly\nB) Edema\nC) Pneumothorax\nD) Pleural Effusion", "answer": "A, B, D",
     "report": _CARDIO,
     "steps": ["Several findings may be present: check the heart size, the pulmonary vessels, the pleural spaces.",
               "A) The cardiac silhouette is enlarged: cardiomegaly.",
               "B) Vascular congestion and interstitial opacities: pulmonary edema.",
               "C) No pleural line: no pneumothorax.",
               "D) Both costophrenic angles are blunted: small bilateral effusions.",
               "The answer is A, B and D."]},
    {"item_id": "demo-008", "task": "multi", "image": ("png16", 8, None),
     "question": "Which findings are in this chest X-ray? Options:\nA) Consolidation\nB) Fracture\nC) Pneumonia\nD) Cardiomegaly", "answer": "AC",
     "report": _PNEUMONIA,
     "steps": ["Check the lungs for airspace disease, the bones for fractures and the heart size.",
               "A) Right lower lobe airspace opacity: consolidation.",
               "B) No cortical break in the ribs: no fracture.",
               "C) The consolidation in this clinical setting indicates pneumonia.",
               "D) The heart is normal in size.",
               "The answer is A and C."]},
    {"item_id": "demo-009", "task": "open", "image": ("dicom", 9, "cardiomegaly"),
     "question": "Which findings are in this chest X-ray?", "answer": "cardiomegaly, edema, pleural effusion",
     "report": _CARDIO,
     "steps": ["Review the heart, vessels, lungs, pleura and devices in turn.",
               "The heart is enlarged.",
               "There is vascular congestion with interstitial edema.",
               "Small bilateral pleural effusions blunt the costophrenic angles.",
               "No consolidation or pneumothorax.",
               "Findings: cardiomegaly, edema, pleural effusion."]},
    {"item_id": "demo-010", "task": "open", "image": ("png", 10, None),
     "question": "Which findings are in this chest X-ray?", "answer": "no finding",
     "report": _NORMAL,
     "steps": "Review the heart, mediastinum, lungs, pleura and bones. The heart and mediastinum are normal. The lungs are clear. There is no effusion or pneumothorax. The bones are intact. There is no finding."},
    {"item_id": "demo-011", "task": "temporal", "image": ("pair", 11, "effusion"),
     "question": "How has the pleural effusion changed since the prior study? Options:\nA) Improving\nB) Stable\nC) Worsening", "answer": "A",
     "report_prior": "FINDINGS: Large right pleural effusion. IMPRESSION: Large right pleural effusion.",
     "report": "FINDINGS: Decreased right pleural effusion, now small. IMPRESSION: Improving right pleural effusion.",
     "steps": ["Compare the right pleural effusion on the prior and current images.",
               "On the prior image the effusion reaches the mid zone.",
               "On the current image only the costophrenic angle is blunted.",
               "The effusion has decreased: the answer is A) Improving."]},
    {"item_id": "demo-012", "task": "temporal", "image": ("pair", 12, None),
     "question": "How has the consolidation changed since the prior study? Options:\nA) Improving\nB) Stable\nC) Worsening", "answer": "C",
     "report_prior": "FINDINGS: Patchy right lower lobe opacity. IMPRESSION: Early pneumonia.",
     "report": "FINDINGS: Increased right lower lobe consolidation now involving the middle lobe. IMPRESSION: Worsening pneumonia.",
     "steps": ["Compare the extent of right lung airspace disease on both studies.",
               "The prior shows patchy opacity at the right base.",
               "The current shows denser, larger consolidation extending upward.",
               "The consolidation is worse: the answer is C) Worsening."]},
]


def _write_images(folder: Path, spec: tuple[str, int, Any]) -> list[str]:
    kind, seed, finding = spec
    if kind == "pair":
        prior, current = f"case{seed}/prior.dcm", f"case{seed}/current.dcm"
        (folder / f"case{seed}").mkdir()
        synthetic.write_chest_dicom(folder / prior, seed=seed, size=768, finding=finding)
        synthetic.write_chest_dicom(folder / current, seed=seed + 100, size=768, finding=None if seed == 11 else finding)
        return [prior, current]
    if kind in ("dicom", "dicom_mono1"):
        name = f"case{seed}.dcm"
        synthetic.write_chest_dicom(folder / name, seed=seed, size=1024, finding=finding, monochrome1=kind == "dicom_mono1")
        return [name]
    name = f"case{seed}.png"
    synthetic.write_chest_png(folder / name, seed=seed, size=768, bits=16 if kind == "png16" else 8, finding=finding)
    return [name]


def create_users() -> list[tuple[str, str, str]]:
    users = get_user_model()
    for username, role, password in USERS:
        user, created = users.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save()
        services.set_role(user, role)
    return [(u, str(r), p) for u, r, p in USERS]


def seed() -> ImportResult | None:
    """Create the demo users and cases once; a second call adds nothing."""
    create_users()
    if Case.objects.filter(source=SOURCE).exists():
        return None
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        folder = Path(tmp)
        lines = []
        for spec in CASES:
            record = {k: v for k, v in spec.items() if k not in ("image", "report", "report_prior", "steps")}
            record["reason_steps"] = spec["steps"]
            record["image_path"] = _write_images(folder, spec["image"])
            if "report_prior" in spec:
                record["original_report1"], record["original_report2"] = spec["report_prior"], spec["report"]
            else:
                record["original_report"] = spec["report"]
            record["dataset_name"] = "Demo"
            lines.append(json.dumps(record))
        cases_file = folder / "cases.jsonl"
        cases_file.write_text("\n".join(lines) + "\n")
        result = import_cases(cases_file, source=SOURCE, image_dir=folder, origin=Chain.Origin.MINED_LLM)
    alice = get_user_model().objects.get(username="alice")
    curator = get_user_model().objects.get(username="carol")
    with transaction.atomic():
        services.assign_chains(Chain.objects.filter(case__source=SOURCE), alice, by=curator)
    return result


# Two demo model runs answering the demo cases, so that the leaderboard, the side-by-side page and
# model-chain review have something to show. They go through `import_predictions` (scored on
# import by the offline judge) like any real run. The "SFT" model is mostly right; the base model
# misses and invents findings and gets more answers wrong.
RUNS: list[tuple[str, str]] = [
    ("demo-sft-3b", "demo/qwen2.5-vl-3b-sft"),
    ("demo-base-3b", "demo/qwen2.5-vl-3b-base"),
]


def _think(steps: str, answer: str) -> str:
    return f"<think>\n{steps}\n</think>\n<answer>{answer}</answer>"


PREDICTIONS: dict[str, tuple[str, str]] = {
    # item_id: (SFT model output, base model output)
    "demo-001": (
        _think("The right costophrenic angle is blunted with a meniscus at the right base.\nThere is a moderate right pleural effusion.\nThe left costophrenic angle is sharp.", "A) Yes"),
        "To detect a pleural effusion, look for blunting of the costophrenic angles. Both costophrenic angles are sharp. There is no pleural effusion. Answer: B) No",
    ),
    "demo-002": (
        _think("Lung markings extend to the chest wall on both sides.\nNo visceral pleural line is seen.\nThere is no pneumothorax.", "B) No"),
        _think("A pneumothorax appears as a pleural line with no lung markings beyond it.\nNo pleural line is visible.", "B"),
    ),
    "demo-003": (
        _think("An endotracheal tube terminates above the carina.\nA nasogastric tube passes below the diaphragm.\nA left chest tube is present.", "A) Yes"),
        _think("Support devices are tubes, lines and pacemakers.\nA tube projects over the trachea.", "A"),
    ),
    "demo-004": (
        _think("No pleural line: no pneumothorax.\nThe right costophrenic angle is blunted by fluid: pleural effusion.\nThe ribs are intact.\nThe heart is normal in size.", "B) Pleural Effusion"),
        _think("The heart appears enlarged.\nThere is a small right pleural effusion.", "B, D"),
    ),
    "demo-005": (
        _think("A well-defined round opacity projects over the left upper zone, a nodule.\nThere is no consolidation and no edema.", "B) Lung Lesion"),
        _think("There is volume loss in the left upper lobe, consistent with atelectasis.\nNo edema.", "D) Atelectasis"),
    ),
    "demo-006": (
        _think("Dense consolidation in the right lower zone suggests pneumonia.\nNo pleural line: no pneumothorax.\nNo tubes or lines are seen.", "A) Pneumonia"),
        _think("There is an opacity in the right lower lobe, which may represent pneumonia.\nThe mediastinum is not widened.", "A"),
    ),
    "demo-007": (
        _think("The cardiac silhouette is enlarged: cardiomegaly.\nVascular congestion and interstitial opacities indicate pulmonary edema.\nBoth costophrenic angles are blunted: small bilateral effusions.\nNo pneumothorax.", "A, B, D"),
        _think("The heart is enlarged.\nThere are small bilateral pleural effusions.\nThe lungs are otherwise clear.", "A, D"),
    ),
    "demo-008": (
        _think("There is right lower lobe airspace consolidation.\nNo rib fracture.\nThe heart is normal in size.", "A) Consolidation"),
        _think("Right lower lobe consolidation is present, consistent with pneumonia.\nNo fracture is seen.", "A, C"),
    ),
    "demo-009": (
        _think("The heart is enlarged.\nThere is vascular congestion with interstitial edema.\nSmall bilateral pleural effusions.\nNo pneumothorax.", "cardiomegaly, edema, pleural effusion"),
        _think("The heart is enlarged.\nThe lungs are clear.", "cardiomegaly"),
    ),
    "demo-010": (
        _think("The heart and mediastinum are normal.\nThe lungs are clear.\nNo effusion or pneumothorax.", "no finding"),
        _think("The heart is mildly enlarged.\nThe lungs are clear.", "cardiomegaly"),
    ),
    "demo-011": (
        _think("On the prior image a large right pleural effusion reaches the mid zone.\nOn the current image the effusion is small.\nThe effusion has decreased.", "A) Improving"),
        _think("A right pleural effusion is present on both images.", "B) Stable"),
    ),
    "demo-012": (
        _think("The prior shows patchy opacity at the right base.\nThe current shows larger right lower lobe consolidation.", "B) Stable"),
        _think("The consolidation in the right lung is larger on the current image.\nIt has worsened.", "C) Worsening"),
    ),
}


def seed_runs() -> list[predictions.PredictionImport]:
    """Import the demo runs that are not there yet (scored on import), and send the base model's
    three lowest-scoring chains to the second radiologist for review."""
    results = []
    curator = get_user_model().objects.get(username="carol")
    with tempfile.TemporaryDirectory(prefix="demo-runs-") as tmp:
        for index, (name, checkpoint) in enumerate(RUNS):
            if ModelRun.objects.filter(name=name).exists():
                continue
            path = Path(tmp) / f"{name}.jsonl"
            path.write_text(
                "".join(
                    json.dumps({"item_id": item, "pred": outputs[index], "model": name}) + "\n"
                    for item, outputs in PREDICTIONS.items()
                ),
                encoding="utf-8",
            )
            result = predictions.import_predictions(
                path, run=name, checkpoint=checkpoint, source=SOURCE, user=curator
            )
            results.append(result)
            if index == 1:
                bob = get_user_model().objects.get(username="bob")
                with transaction.atomic():
                    predictions.send_to_review(result.run, bob, by=curator, mode="lowest", count=3)
    return results
