"""Face matcher on images the tests make or that scikit-image ships (no shared data needed)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

skdata = pytest.importorskip("skimage.data")

from matcher.errors import (  # noqa: E402
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    TemplateError,
    TemplateVersionError,
    UnsupportedFormatError,
)
from matcher.face import (  # noqa: E402
    MODES,
    FaceIndexError,
    FaceTemplate,
    calibration,
    compare,
    detect_faces,
    extract,
)
from matcher.face.alignment import SFACE_REFERENCE, align_face, similarity_transform  # noqa: E402
from matcher.face.quality import pose_angles  # noqa: E402


@pytest.fixture(scope="module")
def astronaut_rgb() -> np.ndarray:
    return skdata.astronaut()  # 512 x 512 RGB, one face (Eileen Collins)


@pytest.fixture(scope="module")
def astronaut(astronaut_rgb) -> np.ndarray:
    return np.ascontiguousarray(astronaut_rgb[:, :, ::-1])  # BGR


@pytest.fixture(scope="module")
def reference(astronaut):
    r = extract(astronaut)
    assert r.found
    return r


def encode(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------- the pipeline


def test_extract_finds_one_face_with_unit_embedding(reference):
    assert reference.faces_found == 1
    assert reference.message == "ok"
    v = reference.embedding
    assert v.dtype == np.float32 and v.shape == (128,)
    assert abs(float(np.linalg.norm(v)) - 1) < 1e-5
    assert 0 <= reference.quality <= 100 and reference.quality >= 50
    x, y, w, h = reference.face.box
    # the face of the astronaut photo is in the upper middle
    assert 150 < x + w / 2 < 250 and 50 < y + h / 2 < 180
    assert reference.face.landmarks.shape == (5, 2)
    assert compare(reference, reference) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("fmt,kw", [
    ("JPEG", {"quality": 90}), ("PNG", {}), ("BMP", {}), ("GIF", {}), ("WEBP", {"quality": 90}), ("TIFF", {}),
])
def test_every_format_gives_the_same_face(astronaut_rgb, reference, fmt, kw):
    r = extract(encode(astronaut_rgb, fmt, **kw))
    assert r.found and r.faces_found == 1
    assert compare(r, reference) > 0.85


def test_gray_pgm_and_gray_array(astronaut_rgb, reference):
    gray = np.asarray(Image.fromarray(astronaut_rgb).convert("L"))
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PPM")  # mode L -> binary PGM (P5)
    assert buf.getvalue()[:2] == b"P5"
    r = extract(buf.getvalue())
    assert r.found and compare(r, reference) > 0.7
    assert compare(extract(gray), r) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("orientation,rotate", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270),
                                                (3, Image.Transpose.ROTATE_180)])
def test_exif_orientation_is_honoured(astronaut_rgb, reference, orientation, rotate):
    # store the pixels turned, with the EXIF tag that tells a viewer how to turn them back
    img = Image.fromarray(astronaut_rgb).transpose(rotate)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92, exif=exif)
    r = extract(buf.getvalue())
    assert r.found and compare(r, reference) > 0.85
    assert r.image_shape[:2] == (512, 512)


def test_tight_crop_without_background(astronaut, reference):
    # the face box only, cut so that chin, cheeks and forehead touch the frame (ORL-like)
    x, y, w, h = reference.face.box.astype(int)
    crop = astronaut[y + h // 6: y + h - h // 8, x + w // 6: x + w - w // 6]
    r = extract(crop)
    assert r.found and compare(r, reference) > 0.5
    # filling a large frame, YuNet alone misses it; the search inside a replicated border finds it
    big = cv2.resize(crop, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
    assert detect_faces(big, border_fraction=0) == []
    r = extract(big)
    assert r.found and compare(r, reference) > 0.5


def test_no_face_is_a_result_not_an_error():
    rng = np.random.default_rng(0)
    for img in (np.zeros((200, 300), np.uint8), np.full((120, 120, 3), 200, np.uint8),
                rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)):
        r = extract(img)
        assert not r.found and r.faces_found == 0 and r.message == "no face found"
        assert r.embedding is None and r.quality == 0 and r.face is None
        with pytest.raises(TemplateError, match="no face found"):
            compare(r, r)
    coffee = encode(skdata.coffee(), "PNG")  # a real photo with no face
    assert not extract(coffee).found


def test_two_faces_counted_and_choosable(astronaut):
    small = np.ascontiguousarray(astronaut[::2, ::2])  # 256 x 256, face half the size
    canvas = np.full((512, 800, 3), 127, np.uint8)
    canvas[:, :512] = astronaut
    canvas[128:384, 530:786] = small
    r0 = extract(canvas, face="largest")
    assert r0.faces_found >= 2
    assert r0.face_index == 0 and r0.faces[0].area > r0.faces[1].area
    assert r0.face.box[0] < 512  # the largest is the full-size one
    assert extract(canvas).face_index == 0  # the primary face is the large one here too
    r1 = extract(canvas, face=1)
    assert r1.face.box[0] > 512
    assert compare(r0, r1) > 0.7  # the same person at half the size
    with pytest.raises(FaceIndexError, match="face 9"):
        extract(canvas, face=9)
    with pytest.raises(ValueError):
        extract(canvas, face="smallest")


def test_primary_face_prefers_the_centred_subject():
    from matcher.face.detection import Face, primary_face_index

    def face(cx, cy, side):
        return Face(box=np.array([cx - side / 2, cy - side / 2, side, side], float),
                    landmarks=np.zeros((5, 2)), score=0.9)

    shape = (250, 250, 3)
    bystander, subject = face(20, 125, 110), face(125, 125, 90)  # LFW: a nearer head at the edge
    assert primary_face_index([bystander, subject], shape) == 1
    giant = face(40, 125, 200)  # but a face far larger than the centred one still wins
    assert primary_face_index([giant, face(125, 125, 40)], shape) == 0


def test_detect_faces_sorted_by_area(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1 and 0 < faces[0].score <= 1
    assert faces[0].eye_distance > 20


def test_fusion_mode(astronaut, reference):
    r = extract(astronaut, mode="fusion")
    assert r.found and r.embedding.shape == (256,)
    assert abs(float(np.linalg.norm(r.embedding)) - 1) < 1e-5
    assert r.template.model == MODES["fusion"]
    with pytest.raises(TemplateError, match="different models"):
        compare(r, reference)
    with pytest.raises(ValueError, match="unknown face mode"):
        extract(astronaut, mode="nope")


# --------------------------------------------------------------------------- bad input


def test_bad_input_gives_typed_errors(astronaut_rgb):
    with pytest.raises(EmptyImageError):
        extract(b"")
    with pytest.raises(UnsupportedFormatError):
        extract(b"%PDF-1.4 this is not an image at all" * 10)
    jpeg = encode(astronaut_rgb, "JPEG")
    with pytest.raises(CorruptImageError):
        extract(jpeg[:400])
    with pytest.raises(CorruptImageError):
        extract(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="pixels"):
        extract(_png_header_only(60_000, 60_000))


# --------------------------------------------------------------------------- templates, alignment


def test_template_round_trip_and_errors(reference):
    t = reference.template
    data = t.to_bytes()
    assert data[:4] == b"LCFT"
    back = FaceTemplate.from_bytes(data)
    assert back == t and back.model == MODES["sface"] and back.quality == t.quality
    assert compare(data, reference) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(TemplateError):
        FaceTemplate.from_bytes(b"nope")
    with pytest.raises(TemplateError, match="truncated|expected"):
        FaceTemplate.from_bytes(data[:-3])
    with pytest.raises(TemplateVersionError):
        FaceTemplate.from_bytes(data[:4] + struct.pack("<H", 99) + data[6:])
    with pytest.raises(TypeError):
        compare(reference, "not a template")


def test_similarity_transform_recovers_a_known_warp():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    ang, s, t = np.radians(17), 1.7, np.array([12.0, -4.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    m = similarity_transform(src, src @ rot.T + t)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_align_face_puts_landmarks_on_the_reference(reference, astronaut):
    crop = align_face(astronaut, reference.face.landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    again = detect_faces(crop, score_threshold=0.3)
    assert again, "the aligned crop still holds a face"
    assert np.abs(again[0].landmarks - SFACE_REFERENCE).max() < 8


def test_pose_angles():
    frontal = np.array([[40, 50], [70, 50], [55, 65], [43, 80], [67, 80]], float)
    yaw, roll = pose_angles(frontal)
    assert abs(yaw) < 1e-9 and abs(roll) < 1e-9
    turned = frontal.copy()
    turned[2, 0] += 12
    assert pose_angles(turned)[0] == pytest.approx(0.4)


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("mode", list(MODES))
def test_calibration_thresholds(mode):
    cal = calibration(mode)
    assert cal.version == MODES[mode] and cal.n_impostors >= 100_000
    t = [cal.threshold(f) for f in (0.01, 0.001, 0.0001)]
    assert -1 < t[0] < t[1] < t[2] < 1
    assert cal.fmr(t[1]) <= 0.001


def test_missing_model_package_is_a_clear_error():
    from matcher.face.models import ModelFile, ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="needs the package"):
        ModelFile("x", "no_such_package_for_locard", "models/x.onnx", "").path()
