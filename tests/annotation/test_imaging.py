"""Identifying, validating and rendering DICOM, PNG and JPEG files (no Django involved)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset

from annotation import imaging
from annotation.imaging import (
    ImageError,
    ImageInfo,
    decode_array,
    inspect_image,
    render,
    safe_metadata,
)
from annotation.synthetic import FAKE_IDENTIFIERS, write_chest_dicom, write_chest_png

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real-cxr"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def pydicom_file(name: str) -> Path:
    """One of pydicom's own test files; never fetched over the network."""
    found = get_testdata_file(name, download=False)
    if found is None:
        pytest.skip(f"pydicom does not ship {name}")
    return Path(found)


def real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def stored(path: Path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array


# ---------------------------------------------------------------- broken DICOM files


def test_it_refuses_a_truncated_dicom():
    # MR_truncated.dcm: MR_small.dcm with the last 62 bytes of pixel data cut off.
    path = pydicom_file("MR_truncated.dcm")
    message = "MR_truncated.dcm: truncated DICOM: pixel data holds 8,130 bytes, 8,192 expected"
    with pytest.raises(ImageError, match=message):
        inspect_image(path)
    with pytest.raises(ImageError, match="truncated DICOM"):
        render(path)


def test_it_refuses_a_dicom_whose_number_of_frames_is_not_a_number():
    # badVR.dcm: a 10x10 32-bit RT Dose whose Number of Frames (VR IS) holds '1A'; pydicom
    # reads it with a warning, but nothing can say how much pixel data there should be.
    with pytest.raises(
        ImageError, match=r"badVR.dcm: invalid DICOM header: Number of Frames is '1A'"
    ):
        inspect_image(pydicom_file("badVR.dcm"))


@pytest.mark.parametrize(
    "name, syntax",
    [
        # NEMA's NM1_JPLY: a 12-bit JPEG Extended stream with a misplaced marker segment
        # (JPGExtended.dcm is the fixed copy, decoded below).
        ("JPEG-lossy.dcm", "JPEG Extended"),
        # JPEG2000.dcm with 4 bytes of the codestream overwritten by a sequence delimiter.
        ("JPEG2000-embedded-sequence-delimiter.dcm", "JPEG 2000"),
    ],
)
def test_it_refuses_corrupt_compressed_pixel_data(name, syntax):
    with pytest.raises(ImageError, match=f"{name}: cannot decode {syntax}"):
        inspect_image(pydicom_file(name))


@pytest.mark.parametrize("name", ["rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm"])
def test_it_refuses_a_dicom_without_pixel_data(name):
    with pytest.raises(ImageError, match=f"{name}: DICOM without pixel data"):
        inspect_image(pydicom_file(name))


# ---------------------------------------------------------------- every shipped syntax


@pytest.mark.parametrize(
    "name, width, height, photometric, frames",
    [
        ("CT_small.dcm", 128, 128, "MONOCHROME2", 1),  # explicit LE, signed, rescaled
        ("MR_small_implicit.dcm", 64, 64, "MONOCHROME2", 1),
        ("MR_small_bigendian.dcm", 64, 64, "MONOCHROME2", 1),
        ("image_dfl.dcm", 512, 512, "MONOCHROME2", 1),  # deflated explicit LE
        ("MR_small_RLE.dcm", 64, 64, "MONOCHROME2", 1),
        ("MR_small_jpeg_ls_lossless.dcm", 64, 64, "MONOCHROME2", 1),
        ("JPEGLSNearLossless_16.dcm", 10, 50, "MONOCHROME2", 1),
        ("MR_small_jp2klossless.dcm", 64, 64, "MONOCHROME2", 1),
        ("JPEG2000.dcm", 256, 1024, "MONOCHROME2", 1),  # lossy J2K, signed 16-bit
        ("693_J2KI.dcm", 512, 512, "MONOCHROME2", 1),  # J2K precision != Bits Stored
        ("JPGExtended.dcm", 256, 1024, "MONOCHROME2", 1),  # JPEG extended, 12-bit
        ("SC_rgb_jpeg_gdcm.dcm", 100, 100, "RGB", 1),  # JPEG lossless, selection value 1
        ("SC_rgb_jpeg_dcmtk.dcm", 100, 100, "YBR_FULL", 1),  # JPEG baseline, colour
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 100, 100, "YBR_FULL_422", 1),
        ("examples_palette.dcm", 800, 350, "PALETTE COLOR", 1),
        ("examples_ybr_color.dcm", 320, 240, "YBR_FULL_422", 30),  # multi-frame JPEG
        ("SC_rgb_rle_16bit_2frame.dcm", 100, 100, "RGB", 2),
        ("rtdose.dcm", 10, 10, "MONOCHROME2", 15),  # 32-bit, multi-frame
        ("liver_1frame.dcm", 512, 512, "MONOCHROME2", 1),  # 1 bit per pixel
    ],
)
def test_it_decodes_and_renders_each_transfer_syntax(name, width, height, photometric, frames):
    path = pydicom_file(name)
    info = inspect_image(path)
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert (info.kind, info.width, info.height) == ("dicom", width, height)
    assert (info.photometric, info.frames, info.transfer_syntax) == (photometric, frames, syntax)
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    with Image.open(io.BytesIO(render(path))) as image:
        assert image.format == "PNG"
        assert image.mode == ("RGB" if colour else "L")
        assert image.size == (width, height)


@pytest.mark.parametrize(
    "reference, other",
    [
        ("MR_small.dcm", "MR_small_RLE.dcm"),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
        ("MR_small.dcm", "MR_small_implicit.dcm"),
        ("MR_small.dcm", "MR_small_bigendian.dcm"),
        ("MR_small.dcm", "MR_small_padded.dcm"),  # excess padding after the pixels is fine
        ("SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"),  # RLE vs JPEG lossless
        ("SC_rgb_rle.dcm", "SC_rgb_gdcm_KY.dcm"),  # RLE vs reversible JPEG 2000
        ("liver_1frame.dcm", "liver_expb_1frame.dcm"),
    ],
)
def test_it_decodes_lossless_syntaxes_to_the_uncompressed_pixels(reference, other):
    expected = decode_array(pydicom_file(reference))
    assert np.array_equal(decode_array(pydicom_file(other)), expected)


def test_it_decodes_every_frame_of_a_compressed_multiframe_file():
    for frame in (0, 7, 14):
        expected = decode_array(pydicom_file("rtdose.dcm"), frame=frame)
        assert np.array_equal(decode_array(pydicom_file("rtdose_rle.dcm"), frame=frame), expected)
    with pytest.raises(ImageError, match="no frame 15"):
        decode_array(pydicom_file("rtdose.dcm"), frame=15)


def test_it_renders_the_same_bytes_for_the_same_pixels_in_another_syntax():
    assert render(pydicom_file("MR_small.dcm")) == render(pydicom_file("MR_small_RLE.dcm"))


def test_it_applies_the_rescale_to_signed_ct_values():
    path = pydicom_file("CT_small.dcm")
    info = inspect_image(path)
    assert (info.rescale_slope, info.rescale_intercept, info.bits_stored) == (1.0, -1024.0, 16)
    values = decode_array(path)
    assert values.dtype == np.float32
    assert np.array_equal(values, stored(path).astype(np.float32) - 1024)
    assert values.min() < -500  # air in Hounsfield units, below zero


def test_it_renders_the_first_frame_of_a_multiframe_file():
    # SC_rgb_rle_2frame.dcm: frame 1 is the colour inverse of frame 0.
    path = pydicom_file("SC_rgb_rle_2frame.dcm")
    shown = pixels(render(path))
    assert np.array_equal(shown, decode_array(path, frame=0))
    assert not np.array_equal(shown, decode_array(path, frame=1))


def test_it_uses_the_first_of_several_windows():
    path = pydicom_file("examples_overlay.dcm")  # Window Center [450, 200], Width [790, 600]
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    info = inspect_image(path)
    assert (info.window_center, info.window_width) == (ds.WindowCenter[0], ds.WindowWidth[0])
    assert info.default_window() == (450.0, 790.0)
    assert render(path) == render(path, window=(450.0, 790.0))


# ---------------------------------------------------------------- windowing


def _assert_windowed(shown: np.ndarray, values: np.ndarray, center: float, width: float):
    """PS3.3 C.11.2.1.2.1 LINEAR: black at or below the window, white above, monotonic."""
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    assert (values <= low).any() and (values > high).any()  # the test image spans both
    assert (shown[values <= low] == 0).all()
    assert (shown[values > high] == 255).all()
    order = np.argsort(values, axis=None, kind="stable")
    assert (np.diff(shown.ravel()[order].astype(int)) >= 0).all()
    inside = shown[(values > low) & (values <= high)]
    assert 0 < inside.mean() < 255 and len(np.unique(inside)) > 100  # grey levels, not a step


def test_it_windows_a_16_bit_png(tmp_path):
    path = write_chest_png(tmp_path / "c.png", bits=16, size=192)
    info = inspect_image(path)
    assert (info.kind, info.bits_stored, info.photometric) == ("png", 16, "MONOCHROME2")
    with Image.open(path) as image:
        assert image.mode == "I;16"
        values = np.asarray(image).astype(np.float64)
    _assert_windowed(
        pixels(render(path, window=(30000, 20000), max_side=None)), values, 30000, 20000
    )


@pytest.mark.parametrize("bits", [12, 16])
def test_it_windows_a_dicom_in_modality_units(tmp_path, bits):
    path = write_chest_dicom(tmp_path / "c.dcm", size=192, bits=bits, rescale=(2.0, -1000.0))
    values = stored(path).astype(np.float64) * 2 - 1000
    center, width = float(np.percentile(values, 50)), float(np.ptp(values) / 3)
    shown = pixels(render(path, window=(center, width), max_side=None))
    _assert_windowed(shown, values, center, width)
    assert np.array_equal(decode_array(path), values.astype(np.float32))


def test_it_renders_with_the_file_window_by_default(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=128, window=(1500.0, 2500.0))
    info = inspect_image(path)
    assert info.default_window() == (1500.0, 2500.0)
    assert render(path) == render(path, window=(1500.0, 2500.0))
    assert render(path) != render(path, window=(1000.0, 500.0))


def test_it_computes_an_auto_window_from_robust_percentiles(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=256, write_window=False)
    info = inspect_image(path)
    assert (info.window_center, info.window_width) == (None, None)
    assert info.default_window() == info.auto_window
    center, width = info.auto_window
    low, high = np.percentile(stored(path), [0.5, 99.5])
    assert abs((center - width / 2) - low) <= 2 and abs((center + width / 2) - (high + 1)) <= 2
    assert render(path) == render(path, window=info.auto_window)


def test_it_applies_a_voi_lut_sequence_when_there_is_no_window(tmp_path):
    # No pydicom test file ships a VOI LUT Sequence: add one (8-bit square-root curve).
    path = write_chest_dicom(tmp_path / "c.dcm", size=128, write_window=False)
    ds = pydicom.dcmread(path)
    table = np.rint(255 * np.sqrt(np.arange(4096) / 4095)).astype("<u2")
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 8])  # LUT Descriptor: entries, first value, bits
    item.add_new(0x00283006, "OW", table.tobytes())  # LUT Data
    ds.VOILUTSequence = [item]
    ds.save_as(path)
    info = inspect_image(path)
    assert info.voi_lut and info.window_center is None
    shown = pixels(render(path, max_side=None))
    assert np.array_equal(shown, table[ds.pixel_array])
    assert not np.array_equal(pixels(render(path, window=(2000, 1000), max_side=None)), shown)


def test_it_applies_a_modality_lut_sequence(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=128, write_window=False)
    ds = pydicom.dcmread(path)
    del ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType
    table = (3 * np.arange(4096) + 100).astype("<u2")  # stored -> modality values
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 16])  # LUT Descriptor
    item.add_new(0x00283004, "LO", "US")  # Modality LUT Type: unspecified
    item.add_new(0x00283006, "OW", table.tobytes())  # LUT Data
    ds.ModalityLUTSequence = [item]
    ds.save_as(path)
    assert np.array_equal(decode_array(path), table[ds.pixel_array].astype(np.float32))
    low, high = np.percentile(table[ds.pixel_array], [0.5, 99.5])
    center, width = inspect_image(path).auto_window
    assert abs(center - width / 2 - low) <= 3 and abs(center + width / 2 - high) <= 6


def test_it_shows_a_synthetic_monochrome1_like_its_monochrome2_twin(tmp_path):
    normal = write_chest_dicom(tmp_path / "m2.dcm", seed=4, size=128)
    inverted = write_chest_dicom(tmp_path / "m1.dcm", seed=4, size=128, monochrome1=True)
    assert np.array_equal(stored(inverted), 4095 - stored(normal))
    difference = pixels(render(inverted)).astype(int) - pixels(render(normal))
    assert np.abs(difference).max() <= 1


def test_it_inverts_on_request(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=128)
    assert np.array_equal(pixels(render(path, invert=True)), 255 - pixels(render(path)))


# ---------------------------------------------------------------- real chest films


@pytest.mark.parametrize(
    "name, photometric",
    [
        ("cr_chest_pa_monochrome2_jpeg.dcm", "MONOCHROME2"),
        ("cr_chest_pa_monochrome1_jpeg.dcm", "MONOCHROME1"),
    ],
)
def test_it_reads_the_real_chest_dicoms(name, photometric):
    info = inspect_image(real(name))
    assert (info.kind, info.width, info.height, info.frames) == ("dicom", 1024, 1024, 1)
    assert (info.transfer_syntax, info.photometric) == (JPEG_BASELINE, photometric)
    assert (info.modality, info.view_position, info.bits_stored) == ("CR", "PA", 8)


def test_it_renders_real_monochrome1_as_the_inverse_of_monochrome2():
    path2 = real("cr_chest_pa_monochrome2_jpeg.dcm")
    path1 = real("cr_chest_pa_monochrome1_jpeg.dcm")
    assert np.array_equal(stored(path1), stored(path2))  # same pixels, other tag
    normal, inverted = pixels(render(path2)), pixels(render(path1))
    assert np.abs(inverted.astype(int) - (255 - normal.astype(int))).max() <= 1
    size = normal.shape[0]
    rows = slice(int(0.3 * size), int(0.6 * size))
    lungs = [
        normal[rows, int(a * size) : int(b * size)].mean() for a, b in ((0.2, 0.35), (0.65, 0.8))
    ]
    mediastinum = normal[rows, int(0.45 * size) : int(0.55 * size)].mean()
    assert max(lungs) < mediastinum - 50  # lungs dark, mediastinum bright


@pytest.mark.parametrize("name", ["00000001_000.png", "00027426_000.png"])
def test_it_reads_and_renders_the_real_pngs_unchanged(name):
    path = real(name)
    info = inspect_image(path)
    assert (info.kind, info.width, info.height, info.bits_stored) == ("png", 512, 512, 8)
    assert info.default_window() == (128.0, 256.0)  # an 8-bit PNG is already a display image
    with Image.open(path) as image:
        original = np.asarray(image.convert("L"))
    assert np.array_equal(pixels(render(path)), original)


def test_it_passes_colour_through(tmp_path):
    colour = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(colour).save(path)
    info = inspect_image(path)
    assert (info.photometric, info.window_center) == ("RGB", None)
    assert np.array_equal(pixels(render(path)), colour)


def test_it_renders_a_large_jpeg_like_a_full_decode_then_resize(tmp_path):
    path = tmp_path / "large.jpg"
    with Image.open(write_chest_png(tmp_path / "c.png", size=1200)) as image:
        image.save(path, "JPEG", quality=95)
        reference = np.asarray(image.resize((300, 300), Image.Resampling.LANCZOS)).astype(int)
    shown = pixels(render(path, max_side=300))  # decoded at 1/4 scale in the DCT domain
    assert shown.shape == (300, 300)
    assert np.abs(shown.astype(int) - reference).mean() < 2


# ---------------------------------------------------------------- bombs and non-images


def _png_claiming(width: int, height: int) -> bytes:
    """A real small PNG whose IHDR is patched to claim another size (CRC recomputed)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data[12:29]  # chunk type + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _refuse_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded an image that should have been refused from its header")

    monkeypatch.setattr(imaging, "pixel_array", fail)
    monkeypatch.setattr(imaging.Image, "open", fail)


def test_it_refuses_a_png_claiming_huge_dimensions_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(_png_claiming(50000, 50000))
    _refuse_decoding(monkeypatch)
    message = "big.png: 50000x50000 pixels exceeds the 60 megapixel limit"
    with pytest.raises(ImageError, match=message):
        inspect_image(path)
    with pytest.raises(ImageError, match=message):
        render(path)


def test_it_refuses_a_jpeg_claiming_huge_dimensions_before_decoding(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")  # baseline start of frame: length, precision, height, width
    data[frame + 5 : frame + 9] = struct.pack(">HH", 60000, 60000)
    path = tmp_path / "big.jpg"
    path.write_bytes(bytes(data))
    _refuse_decoding(monkeypatch)
    with pytest.raises(ImageError, match="big.jpg: 60000x60000 pixels exceeds the 60 megapixel"):
        inspect_image(path)


def test_it_refuses_a_dicom_with_huge_rows_and_columns_before_decoding(tmp_path, monkeypatch):
    path = write_chest_dicom(tmp_path / "big.dcm", size=16)
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 65535
    ds.PixelData = b"\0" * 8
    ds.save_as(path)
    _refuse_decoding(monkeypatch)
    with pytest.raises(ImageError, match="big.dcm: 65535x65535 pixels exceeds the 60 megapixel"):
        inspect_image(path)


def test_it_applies_a_lower_pixel_limit(tmp_path):
    dicom = write_chest_dicom(tmp_path / "c.dcm", size=128)
    png = write_chest_png(tmp_path / "c.png", size=128)
    for path in (dicom, png):
        with pytest.raises(ImageError, match="128x128 pixels exceeds the 0.01 megapixel limit"):
            inspect_image(path, max_pixels=10_000)
        with pytest.raises(ImageError, match="exceeds"):
            render(path, max_pixels=10_000)


def test_it_turns_pillows_own_bomb_check_into_an_image_error(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(20000, 20000))  # over twice Pillow's limit: it refuses
    with pytest.raises(ImageError, match="huge.png: .*decompression bomb"):
        inspect_image(path, max_pixels=10**9)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.png", b"Findings: no acute disease.\n", "not an image (unrecognised format)"),
        ("empty.dcm", b"", "not an image (empty file)"),
        ("noise.dcm", bytes(range(256)) * 40, "not an image"),
        ("fake.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a valid PNG"),
    ],
)
def test_it_refuses_files_that_are_not_images(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=re.escape(f"{name}: {message}")):
        inspect_image(path)


def test_it_refuses_a_missing_file(tmp_path):
    with pytest.raises(ImageError, match="gone.dcm: cannot read file"):
        inspect_image(tmp_path / "gone.dcm")


def _truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def test_it_refuses_truncated_png_and_jpeg(tmp_path):
    png = _truncate(write_chest_png(tmp_path / "cut.png", size=128), 0.5)
    with pytest.raises(ImageError, match="cut.png: truncated or corrupt PNG"):
        inspect_image(png)
    jpeg = tmp_path / "cut.jpg"
    with Image.open(write_chest_png(tmp_path / "whole.png", size=128)) as image:
        image.save(jpeg, "JPEG")
    with pytest.raises(ImageError, match="cut.jpg: truncated or corrupt JPEG"):
        inspect_image(_truncate(jpeg, 0.5))


def test_it_refuses_truncated_dicoms(tmp_path):
    native = _truncate(write_chest_dicom(tmp_path / "native.dcm", size=128), 0.9)
    with pytest.raises(ImageError, match="native.dcm: truncated DICOM: pixel data holds"):
        inspect_image(native)
    jpeg = write_chest_dicom(tmp_path / "jpeg.dcm", size=128, bits=8, compression="jpeg-baseline")
    with pytest.raises(ImageError, match="jpeg.dcm"):
        inspect_image(_truncate(jpeg, 0.6))


def test_it_reads_a_dicom_without_preamble_or_file_meta(tmp_path):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[128:132] != b"DICM"
    info = inspect_image(path)
    assert (info.kind, info.width, info.transfer_syntax) == ("dicom", 128, "1.2.840.10008.1.2")
    assert np.array_equal(decode_array(path), decode_array(pydicom_file("CT_small.dcm")))


# ---------------------------------------------------------------- identifiers


def test_it_keeps_patient_identifiers_out_of_image_info(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=64)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    secrets = [*FAKE_IDENTIFIERS.values(), ds.StudyInstanceUID, ds.SeriesInstanceUID]
    secrets += [ds.SOPInstanceUID, str(ds.PatientName).replace("^", " ")]
    info = inspect_image(path)
    texts = [str(value) for value in dataclasses.asdict(info).values()]
    texts.append(json.dumps(safe_metadata(info)))
    for text in texts:
        for secret in secrets:
            assert secret not in text, secret
    technical = {field.name for field in dataclasses.fields(ImageInfo)}
    assert set(safe_metadata(info)) == technical | {"default_window"}


def test_it_drops_text_that_is_not_a_defined_term(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=64)
    ds = pydicom.dcmread(path)
    ds.ViewPosition, ds.Modality = "JOHN SMITH", "SMITH"  # valid CS, but names
    ds.save_as(path)
    info = inspect_image(path)
    assert (info.view_position, info.modality) == (None, None)


# ---------------------------------------------------------------- output


def test_it_renders_identical_bytes_for_identical_requests(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=300, seed=8, finding="nodule")
    for fmt in ("png", "jpeg"):
        options = dict(window=(2000.0, 3000.0), invert=True, max_side=128, fmt=fmt)
        assert render(path, **options) == render(path, **options)


def test_it_fits_the_longest_side_and_keeps_the_aspect_ratio():
    data = render(pydicom_file("JPEG2000.dcm"), max_side=128)  # 256 wide, 1024 high
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (32, 128)


def test_it_renders_jpeg_on_request(tmp_path):
    path = write_chest_dicom(tmp_path / "c.dcm", size=64)
    data = render(path, fmt="jpeg")
    assert data[:3] == b"\xff\xd8\xff"
    with pytest.raises(ValueError, match="unknown preview format"):
        render(path, fmt="gif")
    with pytest.raises(ValueError, match="window width must be positive"):
        render(path, window=(100.0, 0.0))


def test_it_gives_json_ready_metadata(tmp_path):
    info = inspect_image(write_chest_png(tmp_path / "c.png", size=64, bits=16))
    data = json.loads(json.dumps(safe_metadata(info)))
    assert data["kind"] == "png" and data["default_window"] == list(info.default_window())
