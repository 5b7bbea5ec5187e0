"""Synthetic chest radiographs for the demo and for test fixtures.

Nothing here is anatomy-accurate: the images only need to look like a PA chest film (dark
lungs, bright mediastinum, spine, ribs, clavicles) so that windowing, inversion and previews
can be checked by eye and by tests. Everything is deterministic by seed, including the
DICOM UIDs, so a fixture has the same bytes (and sha256) on every run. No Django, no torch.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

Finding = Literal["nodule", "effusion", "cardiomegaly", "consolidation"]
Compression = Literal["rle", "jpeg-ls", "jpeg2000", "jpeg-baseline"]
FINDINGS: tuple[str, ...] = ("nodule", "effusion", "cardiomegaly", "consolidation")
COMPRESSIONS: dict[str, str] = {
    "rle": RLELossless,  # pydicom's own encoder
    "jpeg-ls": JPEGLSLossless,  # pyjpegls
    "jpeg2000": JPEG2000Lossless,  # pylibjpeg-openjpeg
    "jpeg-baseline": JPEGBaseline8Bit,  # Pillow, 8-bit only (pydicom has no JPEG encoder)
}
SOP_CLASSES = {
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
}
# Obviously fake identifiers, written into every synthetic DICOM so that tests can prove
# none of them ever leaves the file (metadata, previews, exports).
FAKE_IDENTIFIERS: Mapping[str, str] = {
    "PatientName": "DEMO^PATIENT",
    "PatientID": "DEMO-0001",
    "PatientBirthDate": "19000101",
    "PatientAddress": "1 Nowhere Lane, Fakeville",
    "AccessionNumber": "DEMOACC0001",
    "InstitutionName": "Demo Institution (not real)",
    "InstitutionAddress": "2 Imaginary Road, Fakeville",
    "ReferringPhysicianName": "DEMO^REFERRER",
    "PerformingPhysicianName": "DEMO^PERFORMER",
    "OtherPatientIDs": "DEMO-OTHER-0001",
}

Array = np.ndarray  # float32 images, or a row / column of coordinates that broadcast
# Attenuation of each structure as a fraction of full scale (MONOCHROME2: bright = dense).
AIR, SOFT_TISSUE, LUNG, MEDIASTINUM, BONE = 0.04, 0.55, 0.2, 0.7, 0.82


def make_chest_array(
    size: int = 1024, seed: int = 0, bits: int = 12, finding: Finding | None = None
) -> np.ndarray:
    """A PA-chest-like image, uint16 in [0, 2**bits - 1], bright = dense (MONOCHROME2).

    `seed` varies the anatomy a little and the noise; `finding` adds a simple lesion so
    demo cases differ: a nodule, a pleural effusion (fluid level, blunted costophrenic
    angle), an enlarged heart, or patchy lower-zone consolidation.
    """
    if finding is not None and finding not in FINDINGS:
        raise ValueError(f"unknown finding {finding!r}: choose from {', '.join(FINDINGS)}")
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be 1..16, not {bits}")
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1, 1, size, dtype=np.float32)
    y, x = axis[:, None], axis[None, :]  # broadcast instead of a full meshgrid
    edge = np.float32(max(2.0 / size, 0.012))  # soft edges about a few pixels wide

    image = np.full((size, size), AIR, dtype=np.float32)
    body = _ellipse(x, y, 0, 0.25, 0.9 * (1 + rng.uniform(-0.03, 0.03)), 1.3, edge)
    shoulders = _ellipse(x, y, 0, -0.68, 1.02, 0.28, edge)
    image = _blend(image, SOFT_TISSUE, np.maximum(body, shoulders))

    lungs = _lungs(x, y, rng, edge)
    image = _blend(image, LUNG, lungs)
    # Lungs are denser towards the hila, where the vessels are.
    image += 0.1 * lungs * np.exp(-((np.abs(x) - 0.18) ** 2) / 0.05 - (y - 0.0) ** 2 / 0.2)
    image += _ribs(x, y, rng, edge) * (0.08 + 0.05 * (1 - lungs))
    image = _blend(image, MEDIASTINUM, _mediastinum(x, y, rng, finding, edge))
    image = _blend(image, BONE, _spine(x, y, edge) * 0.9)
    image = _blend(image, BONE, _clavicles(x, y, rng, edge))
    if finding == "nodule":
        image += _nodule(x, y, rng) * 0.25
    elif finding == "effusion":
        image = _blend(image, SOFT_TISSUE + 0.05, _effusion(x, y, lungs, rng, edge))
    elif finding == "consolidation":
        image = _blend(image, SOFT_TISSUE, _consolidation(x, y, lungs, rng) * 0.8)

    image += rng.normal(0, 0.008, size=image.shape).astype(np.float32)  # quantum mottle
    top = 2**bits - 1
    return np.rint(np.clip(image, 0, 1) * top).astype(np.uint16)


def write_chest_dicom(
    path: Path,
    *,
    seed: int = 0,
    size: int = 1024,
    bits: int = 12,
    finding: Finding | None = None,
    monochrome1: bool = False,
    modality: Literal["DX", "CR"] = "DX",
    compression: Compression | None = None,
    window: tuple[float, float] | None = None,
    write_window: bool = True,
    rescale: tuple[float, float] = (1.0, 0.0),
    pixels: np.ndarray | None = None,
    patient_name: str = FAKE_IDENTIFIERS["PatientName"],
    patient_id: str = FAKE_IDENTIFIERS["PatientID"],
    identifiers: Mapping[str, str] | None = None,
) -> Path:
    """Write a synthetic PA chest DICOM (Explicit VR Little Endian unless `compression`).

    `window` is (center, width) in modality units; by default a chest window for the bit
    depth, omitted when `write_window` is False. `rescale` is (slope, intercept). `pixels`
    replaces the generated image (uint16 stored values, MONOCHROME2 sense). Identifiers
    default to FAKE_IDENTIFIERS; `identifiers` overrides any of them.
    """
    if compression is not None and compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}: choose from {list(COMPRESSIONS)}")
    if compression == "jpeg-baseline" and bits != 8:
        raise ValueError("JPEG baseline holds 8-bit samples: pass bits=8")
    stored = make_chest_array(size, seed, bits, finding) if pixels is None else pixels
    top = 2**bits - 1
    if monochrome1:
        stored = top - stored.astype(np.int64)  # same anatomy, shown through inversion
    stored = stored.astype(np.uint8 if bits <= 8 else np.uint16)
    fake = {**FAKE_IDENTIFIERS, "PatientName": patient_name, "PatientID": patient_id}
    fake.update(identifiers or {})
    # UIDs from the arguments: the same call always writes the same bytes.
    parts = (sorted(fake.items()), seed, size, bits, finding, monochrome1, modality)
    parts += (compression, window, write_window, rescale, hashlib.sha256(stored).hexdigest())
    entropy = [repr(parts)]
    ds = _dataset(path, modality, entropy)
    for keyword, value in fake.items():
        setattr(ds, keyword, value)
    _set_image(ds, stored, bits, monochrome1, size_mm=430.0)
    slope, intercept = rescale
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
    if write_window:
        center, width = window or (0.5 * top, 0.9 * top)  # lungs to bone, stored units
        if window is None:
            center, width = center * slope + intercept, width * abs(slope)
        if monochrome1 and window is None:  # mirror the stored-value inversion
            center = (top + 1) * slope + 2 * intercept - center
        ds.WindowCenter, ds.WindowWidth = round(center, 2), round(width, 2)
        ds.WindowCenterWidthExplanation = "CHEST"
    if compression == "jpeg-baseline":
        _encapsulate_jpeg(ds, stored)
    elif compression is not None:
        ds.compress(COMPRESSIONS[compression], stored, generate_instance_uid=False)
    ds.save_as(Path(path), enforce_file_format=True)
    return Path(path)


def write_chest_png(
    path: Path,
    *,
    seed: int = 0,
    size: int = 512,
    bits: Literal[8, 16] = 8,
    finding: Finding | None = None,
) -> Path:
    """Write a synthetic chest radiograph as an 8-bit (L) or 16-bit (I;16) grayscale PNG."""
    if bits not in (8, 16):
        raise ValueError(f"PNG bits must be 8 or 16, not {bits}")
    pixels = make_chest_array(size, seed, bits, finding)
    image = Image.fromarray(pixels.astype(np.uint8) if bits == 8 else pixels)
    image.save(Path(path), "PNG")
    return Path(path)


# ---------------------------------------------------------------- DICOM building


def _dataset(path: Path, modality: str, entropy: list[str]) -> FileDataset:
    if modality not in SOP_CLASSES:
        raise ValueError(f"modality must be one of {list(SOP_CLASSES)}, not {modality!r}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES[modality]
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[*entropy, "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[*entropy, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*entropy, "series"])
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "090000"
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, 1
    ds.Modality = modality
    ds.Manufacturer = "Synthetic"
    ds.StudyDescription = "XR CHEST PA (synthetic)"
    ds.SeriesDescription = "PA"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]  # rows run to the patient's left, columns to the feet
    ds.PatientSex = "O"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    return ds


def _set_image(
    ds: Dataset, stored: np.ndarray, bits: int, monochrome1: bool, size_mm: float
) -> None:
    rows, cols = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    spacing = round(size_mm / max(rows, cols), 4)
    ds.ImagerPixelSpacing = ds.PixelSpacing = [spacing, spacing]
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"


def _encapsulate_jpeg(ds: Dataset, stored: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(stored.astype(np.uint8)).save(buffer, "JPEG", quality=90)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"


# ---------------------------------------------------------------- anatomy


def _soft(distance: Array, edge: float) -> Array:
    """0 outside, 1 inside, a smooth ramp across the boundary (no aliasing)."""
    return 0.5 * (1 + np.tanh(distance / edge))


def _ellipse(x: Array, y: Array, cx: float, cy: float, rx: float, ry: float, edge: float) -> Array:
    radius = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return _soft(np.float32(min(rx, ry)) * (1 - radius), edge)


def _blend(image: Array, level: float, mask: Array) -> Array:
    return image + (np.float32(level) - image) * mask


def _lungs(x: Array, y: Array, rng: np.random.Generator, edge: float) -> Array:
    lungs = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    for side in (-1, 1):  # -1: patient's right (image left in a PA view)
        cx, rx = side * 0.37 * (1 + rng.uniform(-0.03, 0.03)), 0.29 * (1 + rng.uniform(-0.05, 0.05))
        cy, ry = -0.02, 0.62 * (1 + rng.uniform(-0.04, 0.04))
        lung = _ellipse(x, y, cx, cy, rx, ry, edge)
        # Diaphragm dome: highest mid-lung, lowest at the costophrenic angle (laterally).
        dome = cy + 0.55 * ry - 0.22 * np.clip(1 - ((x - cx - side * 0.1) / rx) ** 2, 0, 1)
        lungs = np.maximum(lungs, lung * _soft(dome - y, edge))
    return lungs


def _mediastinum(
    x: Array, y: Array, rng: np.random.Generator, finding: str | None, edge: float
) -> Array:
    scale = 1.35 if finding == "cardiomegaly" else 1 + rng.uniform(-0.05, 0.05)
    heart = _ellipse(x, y, 0.08 * scale, 0.24, 0.28 * scale, 0.25 * scale**0.5, edge)
    column = _soft(0.11 - np.abs(x), edge) * _soft(0.35 - y, edge) * _soft(y + 0.95, edge)
    aortic_knob = _ellipse(x, y, 0.12, -0.28, 0.07, 0.06, edge)
    return np.maximum(np.maximum(heart, column), aortic_knob)


def _spine(x: Array, y: Array, edge: float) -> Array:
    column = _soft(0.055 - np.abs(x), edge)
    vertebrae = 0.85 + 0.15 * np.cos(y * np.float32(np.pi * 14))  # discs between bodies
    return column * vertebrae


def _ribs(x: Array, y: Array, rng: np.random.Generator, edge: float) -> Array:
    ribs = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    phase = rng.uniform(-0.02, 0.02)
    lateral = np.abs(x)
    for k in range(10):  # posterior ribs: rise from the spine, then curve down laterally
        y0 = -0.72 + 0.13 * k + phase
        centre = y0 - 0.25 * lateral + 0.55 * lateral**2
        ribs = np.maximum(ribs, _soft(0.018 - np.abs(y - centre), edge * 0.7))
    thorax = _soft(0.45 - y, edge * 4)  # ribs fade out below the diaphragm
    return ribs * thorax * _soft(0.8 - lateral, edge) * _soft(lateral - 0.05, edge)


def _clavicles(x: Array, y: Array, rng: np.random.Generator, edge: float) -> Array:
    tilt = 0.28 + rng.uniform(-0.03, 0.03)
    lateral = np.abs(x)
    line = -0.62 - tilt * (lateral - 0.08)  # medial end low, lateral end high
    bone = _soft(0.03 - np.abs(y - line), edge * 0.7)
    return bone * _soft(0.62 - lateral, edge) * _soft(lateral - 0.07, edge)


def _nodule(x: Array, y: Array, rng: np.random.Generator) -> Array:
    side = rng.choice([-1, 1])
    cx, cy = side * rng.uniform(0.28, 0.45), rng.uniform(-0.35, 0.2)
    radius = rng.uniform(0.03, 0.05)
    return np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))).astype(np.float32)


def _effusion(x: Array, y: Array, lungs: Array, rng: np.random.Generator, edge: float) -> Array:
    side = rng.choice([-1, 1])
    level = rng.uniform(0.05, 0.15)
    # Meniscus: the fluid climbs the lateral chest wall, blunting the costophrenic angle.
    surface = level - 0.9 * np.clip(side * x - 0.3, 0, None) ** 1.5
    same_side = _soft(side * x - 0.06, edge)
    return lungs * same_side * _soft(y - surface, edge)


def _consolidation(x: Array, y: Array, lungs: Array, rng: np.random.Generator) -> Array:
    """Patchy airspace opacity: overlapping blobs in one lower zone."""
    side = rng.choice([-1, 1])
    patches = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    for _ in range(7):
        cx, cy = side * rng.uniform(0.25, 0.5), rng.uniform(0.0, 0.3)
        radius = rng.uniform(0.04, 0.09)
        blob = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)))
        patches = np.maximum(patches, blob.astype(np.float32))
    return lungs * patches
