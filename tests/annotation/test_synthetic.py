"""Synthetic chest radiographs: deterministic, chest-like, valid DICOM and PNG files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from annotation.synthetic import (
    FAKE_IDENTIFIERS,
    FINDINGS,
    make_chest_array,
    write_chest_dicom,
    write_chest_png,
)

SIZE = 256  # small keeps the suite fast; the anatomy is resolution-independent


def _box(image: np.ndarray, top: float, bottom: float, left: float, right: float) -> float:
    """Mean of a region given as fractions of the image."""
    size = image.shape[0]
    return float(
        image[int(top * size) : int(bottom * size), int(left * size) : int(right * size)].mean()
    )


def test_it_makes_the_same_image_for_the_same_seed():
    first = make_chest_array(SIZE, seed=3)
    assert first.dtype == np.uint16 and first.shape == (SIZE, SIZE)
    assert np.array_equal(first, make_chest_array(SIZE, seed=3))
    assert not np.array_equal(first, make_chest_array(SIZE, seed=4))


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_it_keeps_values_within_the_bit_depth(bits):
    image = make_chest_array(SIZE, bits=bits)
    assert image.max() <= 2**bits - 1
    assert image.max() > 2 ** (bits - 1)  # uses the range, not just its bottom


def test_it_draws_dark_lungs_between_a_bright_mediastinum_and_black_air():
    image = make_chest_array(SIZE, seed=0).astype(float)
    right_lung = _box(image, 0.35, 0.55, 0.22, 0.35)  # image left in a PA view
    left_lung = _box(image, 0.35, 0.55, 0.65, 0.78)
    mediastinum = _box(image, 0.3, 0.6, 0.47, 0.53)
    air = _box(image, 0.6, 1.0, 0.0, 0.02)
    assert air < min(right_lung, left_lung)
    assert max(right_lung, left_lung) < mediastinum - 1000


@pytest.mark.parametrize("finding", FINDINGS)
def test_it_adds_a_finding_that_changes_the_image(finding):
    normal = make_chest_array(SIZE, seed=5).astype(float)
    abnormal = make_chest_array(SIZE, seed=5, finding=finding).astype(float)
    changed = np.abs(abnormal - normal) > 200  # well above the noise
    assert changed.mean() > 0.001
    assert abnormal[changed].mean() > normal[changed].mean()  # lesions are denser


def test_it_refuses_an_unknown_finding():
    with pytest.raises(ValueError, match="unknown finding"):
        make_chest_array(SIZE, finding="pneumonia-ish")


def test_it_writes_a_dx_dicom_with_fake_identifiers(tmp_path):
    path = write_chest_dicom(tmp_path / "chest.dcm", seed=2, size=SIZE)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
    assert (ds.Modality, ds.ViewPosition, ds.PhotometricInterpretation) == (
        "DX",
        "PA",
        "MONOCHROME2",
    )
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, 0.0)
    assert 0 < float(ds.WindowWidth) <= 4096
    for keyword, value in FAKE_IDENTIFIERS.items():
        assert str(ds.data_element(keyword).value) == value
    uids = {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}
    assert len(uids) == 3 and ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert np.array_equal(ds.pixel_array, make_chest_array(SIZE, seed=2))


def test_it_writes_the_same_bytes_for_the_same_arguments(tmp_path):
    first = write_chest_dicom(tmp_path / "a.dcm", seed=1, size=SIZE)
    second = write_chest_dicom(tmp_path / "b.dcm", seed=1, size=SIZE)
    other = write_chest_dicom(tmp_path / "c.dcm", seed=1, size=SIZE, patient_id="DEMO-0002")
    assert first.read_bytes() == second.read_bytes()
    assert pydicom.dcmread(other).SOPInstanceUID != pydicom.dcmread(first).SOPInstanceUID


def test_it_overrides_identifiers(tmp_path):
    path = write_chest_dicom(
        tmp_path / "x.dcm", size=64, patient_name="FAKE^ONE", identifiers={"AccessionNumber": "A1"}
    )
    ds = pydicom.dcmread(path)
    assert (str(ds.PatientName), ds.AccessionNumber) == ("FAKE^ONE", "A1")


def test_it_stores_monochrome1_as_inverted_values(tmp_path):
    path = write_chest_dicom(tmp_path / "m1.dcm", seed=1, size=SIZE, monochrome1=True)
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert np.array_equal(ds.pixel_array, 4095 - make_chest_array(SIZE, seed=1))


@pytest.mark.parametrize(
    "compression, syntax",
    [("rle", RLELossless), ("jpeg-ls", JPEGLSLossless), ("jpeg2000", JPEG2000Lossless)],
)
def test_it_compresses_losslessly(tmp_path, compression, syntax):
    path = write_chest_dicom(tmp_path / "c.dcm", size=SIZE, compression=compression)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(ds.pixel_array, make_chest_array(SIZE))


def test_it_writes_8_bit_jpeg_baseline(tmp_path):
    path = write_chest_dicom(tmp_path / "j.dcm", size=SIZE, bits=8, compression="jpeg-baseline")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert (ds.BitsAllocated, ds.BitsStored, ds.LossyImageCompression) == (8, 8, "01")
    error = np.abs(ds.pixel_array.astype(int) - make_chest_array(SIZE, bits=8))
    assert error.mean() < 2  # lossy, but close


def test_it_refuses_jpeg_baseline_above_8_bits(tmp_path):
    with pytest.raises(ValueError, match="8-bit"):
        write_chest_dicom(tmp_path / "j.dcm", size=64, bits=12, compression="jpeg-baseline")


@pytest.mark.parametrize("bits, mode", [(8, "L"), (16, "I;16")])
def test_it_writes_grayscale_pngs(tmp_path, bits, mode):
    path = write_chest_png(tmp_path / "chest.png", seed=4, size=SIZE, bits=bits)
    with Image.open(path) as image:
        assert (image.format, image.mode, image.size) == ("PNG", mode, (SIZE, SIZE))
        assert np.array_equal(np.asarray(image), make_chest_array(SIZE, seed=4, bits=bits))
    assert (
        path.read_bytes()
        == write_chest_png(tmp_path / "again.png", seed=4, size=SIZE, bits=bits).read_bytes()
    )
