"""Identify, validate and render the image files of a study: DICOM, PNG and JPEG.

Pure functions over files, called by the Django views and the import services: nothing here
imports Django or torch. `render` is deterministic (same file and parameters give the same
bytes) because callers cache previews by (sha256, parameters).

Display pipeline, per DICOM PS3.3 C.11 (grayscale):
stored value -> modality LUT (rescale) -> VOI (window or VOI LUT) -> MONOCHROME1 inversion.
For 8- and 16-bit data the whole pipeline is evaluated once per possible stored value into a
lookup table, so the per-pixel cost is a single table lookup whatever the bit depth.
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSTransferSyntaxes,
)

MAX_PIXELS = 60_000_000  # per frame; a 43 cm detector at 0.1 mm pitch is ~18 MP
PERCENTILES = (0.5, 99.5)  # robust auto window: ignores collimator edges and burnt-in labels
PERCENTILE_SAMPLES = 1_000_000  # pixels sampled for the auto window; ample for 0.1 % precision
PNG_COMPRESS_LEVEL = 1  # previews are cached: level 6 costs ~5x the time for ~15 % fewer bytes
JPEG_QUALITY = 90

Kind = Literal["dicom", "png", "jpeg"]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# Technical text fields keep only the standard's defined terms (PS3.3): a mis-filled
# header cannot carry a name or an id into ImageInfo through them.
PHOTOMETRICS = frozenset(
    "MONOCHROME1 MONOCHROME2 RGB YBR_FULL YBR_FULL_422 YBR_PARTIAL_420 YBR_PARTIAL_422 "
    "YBR_ICT YBR_RCT ARGB CMYK HSV XYB".split()
) | {"PALETTE COLOR"}
MODALITIES = frozenset(
    "AR ASMT AU BDUS BI BMD CR CT DG DOC DX ECG EPS ES FID GM HC HD IO IOL IVOCT IVUS KER KO "
    "LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN PR PT PX REG RESP RF "
    "RG RTDOSE RTIMAGE RTPLAN RTRECORD RTSTRUCT RWV SEG SM SMR SR SRF STAIN TG US VA XA XC".split()
)
VIEW_POSITIONS = frozenset("AP PA LL RL RLD LLD RLO LLO LAT LATERAL".split())
VOI_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})
_UID_STRING = re.compile(r"[0-9.]{1,64}")


class ImageError(ValueError):
    """A file is not a usable image; the message names the file and says what is wrong."""


@dataclass(frozen=True)
class ImageInfo:
    """Technical description of an image file. Holds no patient identifiers, by design."""

    kind: Kind
    width: int
    height: int
    bits_stored: int
    photometric: str  # as stored: MONOCHROME1, MONOCHROME2, RGB, YBR_FULL_422, ...
    modality: str | None
    view_position: str | None
    window_center: float | None  # the file's own window (first one when several)
    window_width: float | None
    rescale_slope: float
    rescale_intercept: float
    transfer_syntax: str | None  # DICOM transfer syntax UID
    frames: int
    auto_window: tuple[float, float]  # robust window from the pixels (modality values)
    voi_lut: bool = False  # the file carries a VOI LUT Sequence

    def default_window(self) -> tuple[float, float]:
        """(center, width) to show first: the file's window, else one from the pixels."""
        if self.window_center is not None and self.window_width is not None:
            return (self.window_center, self.window_width)
        return self.auto_window


def safe_metadata(info: ImageInfo) -> dict[str, Any]:
    """ImageInfo as a JSON-ready dict (technical fields only)."""
    data = dataclasses.asdict(info)
    data["auto_window"] = list(info.auto_window)
    data["default_window"] = list(info.default_window())
    return data


@dataclass
class _Frame:
    """One decoded frame and what is needed to map its stored values to display."""

    pixels: np.ndarray  # stored values (H, W) in native byte order, or RGB (H, W, 3)
    bits_stored: int
    colour: bool = False
    monochrome1: bool = False
    slope: float = 1.0
    intercept: float = 0.0
    modality_lut: Dataset | None = None  # dataset carrying a Modality LUT Sequence
    voi_lut: Dataset | None = None  # dataset carrying a VOI LUT Sequence
    window: tuple[float, float] | None = None  # the file's own window
    voi_function: str = "LINEAR"
    display_ready: bool = False  # 8-bit PNG/JPEG: already a display image


# ---------------------------------------------------------------- public API


def inspect_image(path: Path, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Identify an image by content, decode every frame once, and describe it.

    Raises ImageError for non-images, truncated or corrupt files, bad headers and images
    larger than `max_pixels` per frame (refused before any decoding).
    """
    path = Path(path)
    frame, fields = _load(path, max_pixels=max_pixels, all_frames=True)
    return ImageInfo(**fields, auto_window=_auto_window(frame))


def decode_array(path: Path, *, frame: int = 0, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Pixels of one frame with the modality LUT applied: float32 (H, W), or RGB (H, W, 3)."""
    loaded, _ = _load(Path(path), max_pixels=max_pixels, index=frame)
    if loaded.colour:
        return loaded.pixels
    return _modality(loaded, loaded.pixels)


def render(
    path: Path,
    *,
    window: tuple[float, float] | None = None,
    invert: bool = False,
    max_side: int | None = 1024,
    fmt: Literal["png", "jpeg"] = "png",
    max_pixels: int = MAX_PIXELS,
) -> bytes:
    """An 8-bit preview (grayscale, or RGB for colour images) of the first frame.

    The VOI is `window` (center, width in modality units), else the file's window, else its
    VOI LUT Sequence, else the auto window. MONOCHROME1 is shown inverted (low values bright);
    `invert` flips once more. Colour images ignore `window`. The longest side is reduced
    to `max_side` (None keeps the full size).
    """
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"unknown preview format {fmt!r}: use 'png' or 'jpeg'")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be positive, not {max_side}")
    if window is not None and not window[1] > 0:
        raise ValueError(f"window width must be positive, not {window[1]}")
    frame, _ = _load(Path(path), max_pixels=max_pixels, draft_side=max_side)
    display = _display(frame, window)
    if invert:
        display = 255 - display
    image = _fit(Image.fromarray(display), max_side)
    return _encode(image, fmt)


# ---------------------------------------------------------------- loading


def _load(
    path: Path,
    *,
    max_pixels: int,
    all_frames: bool = False,
    index: int = 0,
    draft_side: int | None = None,
) -> tuple[_Frame, dict[str, Any]]:
    """Decode frame `index` (and check every frame when `all_frames`); return it and the
    ImageInfo fields."""
    kind = _sniff(path)
    if kind == "dicom":
        return _load_dicom(path, max_pixels=max_pixels, all_frames=all_frames, index=index)
    if index != 0:
        raise ImageError(f"{path.name}: a {kind.upper()} file has a single frame")
    return _load_pillow(path, kind, max_pixels=max_pixels, draft_side=draft_side)


def _sniff(path: Path) -> Kind:
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as exc:
        raise ImageError(f"{path.name}: cannot read file ({exc.strerror or exc})") from exc
    if not head:
        raise ImageError(f"{path.name}: not an image (empty file)")
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(_JPEG_SIGNATURE):
        return "jpeg"
    return "dicom"  # with or without preamble; _read_dicom confirms or refuses


def _read_dicom(path: Path) -> Dataset:
    name = path.name
    with path.open("rb") as handle:
        has_preamble = handle.read(132)[128:132] == b"DICM"
    try:
        # force: also accept files without the 128-byte preamble (bare datasets); a
        # non-DICOM file read this way has no pixel data and is refused below.
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types on garbage input
        if has_preamble:
            raise ImageError(f"{name}: unreadable DICOM ({_reason(exc)})") from exc
        raise ImageError(f"{name}: not an image (unrecognised format)") from exc
    if "PixelData" not in ds:
        if has_preamble:
            raise ImageError(f"{name}: DICOM without pixel data (not an image, or truncated)")
        raise ImageError(f"{name}: not an image (unrecognised format)")
    return ds


def _load_dicom(
    path: Path, *, max_pixels: int, all_frames: bool, index: int
) -> tuple[_Frame, dict[str, Any]]:
    name = path.name
    ds = _read_dicom(path)
    rows, cols, frames = _dicom_geometry(ds, name, max_pixels)  # before any decoding
    if not 0 <= index < frames:
        raise ImageError(f"{name}: has {frames} frame(s), no frame {index}")
    photometric = _term(ds.get("PhotometricInterpretation"), PHOTOMETRICS)
    if photometric is None:
        raise ImageError(
            f"{name}: invalid DICOM header: Photometric Interpretation missing or unknown"
        )
    syntax = _transfer_syntax(ds, name)
    _check_length(ds, name, syntax)
    first = _decode_frame(ds, name, index, syntax, (rows, cols))
    for other in range(frames) if all_frames else ():
        if other != index:  # validation only: every frame must decode
            _decode_frame(ds, name, other, syntax, (rows, cols))

    frame = _dicom_frame(ds, name, first, photometric)
    window = None if frame.colour else frame.window
    fields = {
        "kind": "dicom",
        "width": cols,
        "height": rows,
        "bits_stored": _header_int(ds, "BitsStored", name, default=ds.BitsAllocated),
        "photometric": photometric,
        "modality": _term(ds.get("Modality"), MODALITIES),
        "view_position": _term(ds.get("ViewPosition"), VIEW_POSITIONS),
        "window_center": None if window is None else window[0],
        "window_width": None if window is None else window[1],
        "rescale_slope": frame.slope,
        "rescale_intercept": frame.intercept,
        "transfer_syntax": str(syntax) if _UID_STRING.fullmatch(str(syntax)) else None,
        "frames": frames,
        "voi_lut": frame.voi_lut is not None,
    }
    return frame, fields


def _dicom_geometry(ds: Dataset, name: str, max_pixels: int) -> tuple[int, int, int]:
    """(rows, columns, frames) from the header, refusing oversized or malformed images."""
    rows, cols = _header_int(ds, "Rows", name), _header_int(ds, "Columns", name)
    if rows < 1 or cols < 1:
        raise ImageError(f"{name}: invalid DICOM header: {cols}x{rows} pixels")
    _check_size(name, cols, rows, max_pixels)
    frames = _header_int(ds, "NumberOfFrames", name, default=1)
    if frames < 1:
        raise ImageError(f"{name}: invalid DICOM header: Number of Frames is {frames}")
    bits_allocated = _header_int(ds, "BitsAllocated", name)
    _header_int(ds, "BitsStored", name, default=bits_allocated)  # must be a number too
    return rows, cols, frames


def _dicom_frame(ds: Dataset, name: str, pixels: np.ndarray, photometric: str) -> _Frame:
    """A decoded frame with the display attributes of its dataset."""
    slope = _header_float(ds, "RescaleSlope", name, default=1.0)
    if slope == 0:
        raise ImageError(f"{name}: invalid DICOM header: Rescale Slope is 0")
    frame = _Frame(
        pixels=pixels,
        bits_stored=_header_int(ds, "BitsStored", name, default=ds.BitsAllocated),
        monochrome1=photometric == "MONOCHROME1",
        slope=slope,
        intercept=_header_float(ds, "RescaleIntercept", name, default=0.0),
        modality_lut=ds if _has_lut(ds, "ModalityLUTSequence") else None,
        voi_lut=ds if _has_lut(ds, "VOILUTSequence") else None,
        window=_file_window(ds),
        voi_function=_term(ds.get("VOILUTFunction"), VOI_FUNCTIONS) or "LINEAR",
    )
    if photometric == "PALETTE COLOR":
        frame.pixels = apply_color_lut(pixels, ds)
        frame.bits_stored = 8 * frame.pixels.dtype.itemsize  # the palette's own depth
    frame.colour = frame.pixels.ndim == 3
    return frame


def _transfer_syntax(ds: Dataset, name: str) -> UID:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    syntax = meta.get("TransferSyntaxUID")
    if syntax:
        return UID(syntax)
    # A bare dataset (no file meta): pydicom worked out its encoding while reading; that is
    # enough for native pixel data, but not for compressed data (the codec is unknown).
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if ds["PixelData"].is_undefined_length or little is None:
        raise ImageError(f"{name}: DICOM without a transfer syntax for compressed pixel data")
    if implicit:
        syntax = ImplicitVRLittleEndian
    else:
        syntax = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    meta.TransferSyntaxUID = syntax
    return UID(syntax)


def _check_length(ds: Dataset, name: str, syntax: UID) -> None:
    """Refuse native pixel data shorter than the header promises (a truncated file)."""
    if syntax.is_encapsulated:
        return  # compressed streams are checked by decoding them
    try:
        expected = get_expected_length(ds, "bytes")
    except Exception as exc:  # missing or inconsistent group 0028 elements
        raise ImageError(f"{name}: invalid DICOM header ({_reason(exc)})") from exc
    actual = len(ds.PixelData)
    if actual < expected:
        raise ImageError(
            f"{name}: truncated DICOM: pixel data holds {actual:,} bytes, {expected:,} expected"
        )


def _fast_plugin(ds: Dataset, syntax: UID) -> str:
    """The decoder to try first where pydicom's default is several times slower."""
    if syntax in JPEGLSTransferSyntaxes:
        return "pyjpegls"  # CharLS: ~3x faster than pylibjpeg's libjpeg on 16-bit images
    if syntax == JPEGBaseline8Bit and ds.get("SamplesPerPixel") == 1:
        # libjpeg-turbo: ~4x faster; grayscale only, so no colour transform can be misread
        return "pillow"
    return ""


def _decode_frame(
    ds: Dataset, name: str, index: int, syntax: UID, shape: tuple[int, int]
) -> np.ndarray:
    plugins = [_fast_plugin(ds, syntax), ""]  # "" lets pydicom try every plugin in turn
    if not plugins[0]:
        plugins = plugins[1:]
    for plugin in plugins:
        try:
            arr = pixel_array(ds, index=index, decoding_plugin=plugin)
            break
        except Exception as exc:  # each plugin raises its own types
            if plugin == plugins[-1]:
                raise ImageError(
                    f"{name}: cannot decode {syntax.name} pixel data ({_reason(exc)})"
                ) from exc
    if arr.shape[:2] != shape:
        raise ImageError(
            f"{name}: frame {index} decodes to {arr.shape[1]}x{arr.shape[0]} pixels, "
            f"the header says {shape[1]}x{shape[0]}"
        )
    if not arr.dtype.isnative:  # big endian files decode to big endian arrays
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _load_pillow(
    path: Path, kind: Kind, *, max_pixels: int, draft_side: int | None
) -> tuple[_Frame, dict[str, Any]]:
    name, label = path.name, kind.upper()
    declared = _declared_size(path, kind)
    if declared is not None:
        _check_size(name, *declared, max_pixels)  # from the header: before Pillow sees it
    try:
        # Pillow checks its own pixel limit while reading the header; make its warning an
        # error so every oversized image fails the same way. (catch_warnings swaps the
        # process-wide filters: harmless here, as no other warning is raised as an error.)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: {_reason(exc)}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: not a valid {label} ({_reason(exc)})") from exc
    with image:
        width, height = image.size
        _check_size(name, width, height, max_pixels)  # before any decoding
        if kind == "jpeg" and draft_side and max(width, height) >= 2 * draft_side:
            # DCT-domain downscaling (1/2..1/8) while decoding: a correct, much faster
            # first step for large JPEGs; _fit does the rest.
            scale = draft_side / max(width, height)
            image.draft(image.mode, (round(width * scale), round(height * scale)))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{name}: truncated or corrupt {label} ({_reason(exc)})") from exc
        frames = getattr(image, "n_frames", 1)
        frame, photometric = _pillow_frame(image)
    fields = {
        "kind": kind,
        "width": width,
        "height": height,
        "bits_stored": frame.bits_stored,
        "photometric": photometric,
        "modality": None,
        "view_position": None,
        "window_center": None,
        "window_width": None,
        "rescale_slope": 1.0,
        "rescale_intercept": 0.0,
        "transfer_syntax": None,
        "frames": frames,
    }
    return frame, fields


# JPEG start-of-frame markers (ITU T.81 B.1.1.3): all of C0-CF but DHT, JPG and DAC.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _declared_size(path: Path, kind: Kind) -> tuple[int, int] | None:
    """(width, height) as the PNG or JPEG header declares them, None if not found."""
    with path.open("rb") as handle:
        if kind == "png":
            head = handle.read(24)  # signature, IHDR length and type, width, height
            if head[12:16] != b"IHDR":
                return None
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        handle.seek(2)  # after SOI
        while True:
            byte = handle.read(1)
            while byte and byte != b"\xff":
                byte = handle.read(1)
            while byte == b"\xff":  # fill bytes before the marker code
                byte = handle.read(1)
            if not byte or byte[0] in (0xD9, 0xDA):  # end of file or of image, or scan data
                return None
            marker = byte[0]
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a segment
                continue
            length = int.from_bytes(handle.read(2), "big")
            if marker in _JPEG_FRAME_MARKERS:
                frame = handle.read(5)  # precision, height, width
                if len(frame) < 5:
                    return None
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            handle.seek(max(length - 2, 0), io.SEEK_CUR)


def _pillow_frame(image: Image.Image) -> tuple[_Frame, str]:
    mode = image.mode
    if mode.startswith("I;16"):
        pixels = np.asarray(image)
        return _Frame(pixels=pixels.astype(pixels.dtype.newbyteorder("=")), bits_stored=16), (
            "MONOCHROME2"
        )
    if mode == "I":  # 32-bit container; Pillow uses it for some 16-bit PNGs
        pixels = np.asarray(image)
        if pixels.size and pixels.min() >= 0 and pixels.max() < 2**16:
            return _Frame(pixels=pixels.astype(np.uint16), bits_stored=16), "MONOCHROME2"
        return _Frame(pixels=pixels, bits_stored=32), "MONOCHROME2"
    if mode in ("L", "LA", "1"):
        bits = 1 if mode == "1" else 8
        pixels = np.asarray(image.convert("L"))
        return _Frame(pixels=pixels, bits_stored=bits, display_ready=True), "MONOCHROME2"
    rgb = np.asarray(image.convert("RGB"))
    if (
        mode == "P"
        and np.array_equal(rgb[..., 0], rgb[..., 1])
        and np.array_equal(rgb[..., 1], rgb[..., 2])
    ):  # a grey palette is just a grayscale image
        return _Frame(pixels=rgb[..., 0].copy(), bits_stored=8, display_ready=True), "MONOCHROME2"
    return _Frame(pixels=rgb, bits_stored=8, colour=True), "RGB"


# ---------------------------------------------------------------- header helpers


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} pixels exceeds the {max_pixels / 1e6:g} megapixel limit"
        )


def _describe(keyword: str) -> str:
    return pydicom.datadict.dictionary_description(keyword)


def _header_int(ds: Dataset, keyword: str, name: str, default: int | None = None) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise ImageError(f"{name}: invalid DICOM header: no {_describe(keyword)}")
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ImageError(
            f"{name}: invalid DICOM header: {_describe(keyword)} is {str(value)!r}, "
            "not a whole number"
        ) from exc


def _header_float(ds: Dataset, keyword: str, name: str, default: float) -> float:
    value = _first(ds.get(keyword))
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ImageError(
            f"{name}: invalid DICOM header: {_describe(keyword)} is {str(value)!r}, not a number"
        ) from exc
    if not np.isfinite(number):
        raise ImageError(f"{name}: invalid DICOM header: {_describe(keyword)} is {number}")
    return number


def _file_window(ds: Dataset) -> tuple[float, float] | None:
    """The file's first window, or None: a missing or malformed window is only a lost
    display hint, so it falls back to the auto window instead of refusing the image."""
    try:
        center = float(_first(ds.get("WindowCenter")))
        width = float(_first(ds.get("WindowWidth")))
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        return None
    return (center, width)


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return value[0] if len(value) else None
    return value


def _has_lut(ds: Dataset, keyword: str) -> bool:
    items = ds.get(keyword)
    return bool(items) and "LUTDescriptor" in items[0] and "LUTData" in items[0]


def _term(value: Any, allowed: frozenset[str]) -> str | None:
    """A defined term of the standard, or None for anything else."""
    value = _first(value)
    text = "" if value is None else str(value).strip().upper()
    return text if text in allowed else None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------- display pipeline


def _modality(frame: _Frame, values: np.ndarray) -> np.ndarray:
    """Stored values -> modality values (e.g. Hounsfield units), float32."""
    if frame.modality_lut is not None:
        return apply_modality_lut(values, frame.modality_lut).astype(np.float32)
    out = values.astype(np.float32)
    if frame.slope != 1.0:
        out *= np.float32(frame.slope)
    if frame.intercept != 0.0:
        out += np.float32(frame.intercept)
    return out


def _lookup_domain(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For 8/16-bit integers: (every possible stored value, pixels as indices into it)."""
    if pixels.dtype.kind not in "iu" or pixels.dtype.itemsize > 2:
        return None
    unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
    # Viewing signed values as unsigned maps each value to a unique index, no arithmetic.
    domain = np.arange(2 ** (8 * unsigned.itemsize), dtype=unsigned).view(pixels.dtype)
    return domain, pixels.view(unsigned)


def _auto_window(frame: _Frame) -> tuple[float, float]:
    """Window spanning the 0.5-99.5 percentiles of the modality values."""
    if frame.colour or frame.display_ready:  # already display values: identity window
        top = 2.0**frame.bits_stored if frame.colour else 256.0
        return (top / 2, top)
    # One stored-value step in modality units (0 for continuous float data).
    quantum = abs(frame.slope) if frame.modality_lut is None else 1.0
    stride = _stride(frame.pixels)
    sample = frame.pixels[::stride, ::stride]
    lookup = _lookup_domain(sample)
    if lookup is not None:  # histogram of stored values, then map only the distinct ones
        domain, index = lookup
        counts = np.bincount(index.ravel(), minlength=domain.size)
        present = np.flatnonzero(counts)
        values, weights = _modality(frame, domain[present]), counts[present]
    else:
        values = _modality(frame, sample.ravel())
        weights = np.ones(values.size, dtype=np.int64)
        quantum = 0.0 if sample.dtype.kind == "f" else quantum
    finite = np.isfinite(values)
    values, weights = values[finite], weights[finite]
    if values.size == 0:
        return (0.5, 1.0)
    low, high = _weighted_percentiles(values, weights, PERCENTILES)
    # The DICOM linear window maps [c - 0.5 - (w-1)/2, c - 0.5 + (w-1)/2] onto the output
    # range; spanning one extra quantum maps `low` to black and `high` to white exactly
    # (an 8-bit image using 0..255 gets the identity window c=128, w=256).
    width = max(high - low + quantum, 1e-6)
    return (low + width / 2, width)


def _stride(pixels: np.ndarray) -> int:
    area = pixels.shape[0] * pixels.shape[1]
    return max(1, int(np.ceil(np.sqrt(area / PERCENTILE_SAMPLES))))


def _weighted_percentiles(
    values: np.ndarray, weights: np.ndarray, percents: tuple[float, float]
) -> tuple[float, float]:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    targets = np.asarray(percents) / 100 * cumulative[-1]
    picks = np.minimum(np.searchsorted(cumulative, targets), cumulative.size - 1)
    low, high = values[order][picks]
    return float(low), float(high)


def _voi(frame: _Frame, values: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Modality values -> [0, 1]: the given window, the file's, its VOI LUT, or the auto one."""
    if window is None and frame.window is None and frame.voi_lut is not None:
        return _voi_lut(frame.voi_lut, values)
    center, width = window or frame.window or _auto_window(frame)
    return _window(values, center, width, frame.voi_function)


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2: LINEAR (the default), LINEAR_EXACT and SIGMOID VOI functions."""
    x = values.astype(np.float32, copy=False)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - np.float32(center)) / np.float32(width)))
    if function == "LINEAR_EXACT":
        y = (x - np.float32(center)) / np.float32(width) + np.float32(0.5)
    elif width <= 1:  # a LINEAR window of width 1 is a threshold
        return (x > center - 0.5).astype(np.float32)
    else:
        y = (x - np.float32(center - 0.5)) / np.float32(width - 1) + np.float32(0.5)
    return np.clip(y, 0.0, 1.0, out=y)


def _voi_lut(ds: Dataset, values: np.ndarray) -> np.ndarray:
    """The first VOI LUT Sequence item (PS3.3 C.11.2.1.1), scaled to [0, 1].

    Not pydicom's apply_voi_lut: pydicom 3.0 builds the table indices in the table's own
    dtype, so an 8-bit table with more than 256 entries wraps around.
    """
    item = ds.VOILUTSequence[0]
    entries, first, _ = (int(v) for v in item.LUTDescriptor)
    data = item.LUTData
    if isinstance(data, bytes):  # OW: raw 16-bit words in the dataset's byte order
        big_endian = ds.file_meta.get("TransferSyntaxUID") == ExplicitVRBigEndian
        table = np.frombuffer(data, dtype=">u2" if big_endian else "<u2")
    else:  # US: one value or a list
        table = np.atleast_1d(np.asarray(data, dtype=np.int64))
    table = table[: entries or 65536].astype(np.float32)  # 0 entries means 2**16
    index = np.clip(np.rint(values) - first, 0, table.size - 1).astype(np.int64)
    out = table[index]
    # Scale by the depth the table really uses: some files declare 16 bits for 12-bit data.
    top = float(2 ** int(table.max()).bit_length() - 1) if table.size else 1.0
    return out / max(top, 1.0)


def _display(frame: _Frame, window: tuple[float, float] | None) -> np.ndarray:
    """Frame -> uint8 display pixels (H, W) or (H, W, 3)."""
    if frame.colour:
        return _colour8(frame)
    lookup = _lookup_domain(frame.pixels)
    if lookup is not None:
        domain, index = lookup
        table = _to8(_voi(frame, _modality(frame, domain), window))
        if frame.monochrome1:
            table = 255 - table  # inverting the table costs nothing per pixel
        return table[index]
    out = _to8(_voi(frame, _modality(frame, frame.pixels), window))
    return 255 - out if frame.monochrome1 else out


def _to8(unit: np.ndarray) -> np.ndarray:
    unit = np.nan_to_num(unit, nan=0.0)
    return (unit * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def _colour8(frame: _Frame) -> np.ndarray:
    pixels = frame.pixels
    if pixels.dtype == np.uint8:
        return pixels
    top = np.float32(2.0**frame.bits_stored - 1)
    scaled = pixels.astype(np.float32) * (np.float32(255) / top) + np.float32(0.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _fit(image: Image.Image, max_side: int | None) -> Image.Image:
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap=1: box-average by the whole factor first, Lanczos for the rest; 2.4x faster
    # than Lanczos alone from 3000 px, with a mean difference of 0.35 grey levels.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
