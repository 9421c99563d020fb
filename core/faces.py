"""Faces: finding them (mediapipe's bundled face mesh), and two ways of swapping them.

- classic: the source face warped onto the target's geometry triangle by triangle (Delaunay over 468 mesh
  points), a hull mask that keeps the target's inner mouth, colour transfer in LAB, seamless cloning. Offline,
  no download, well under a second per 512 px image on a CPU.
- neural: insightface's inswapper_128 with an ArcFace embedding, run by onnxruntime, when the operator has put
  the model files in a folder. Alignment uses 5 key points taken from the same face mesh.

Images here are RGB uint8 numpy arrays (height, width, 3). cv2, mediapipe and onnxruntime load on first use.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.device import imported

MAX_FACES = 10
MESH_POINTS = 468  # the face mesh without the 10 iris points
INNER_MOUTH = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
# ArcFace's canonical 5 points in a 112x112 crop: left eye, right eye, nose tip, left and right mouth corners.
ARCFACE_5 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
# Regions of the 468-point face mesh (mediapipe's FACEMESH_* connection sets): each eye with its eyebrow, the lips.
EYES = (
    (
        7,
        33,
        133,
        144,
        145,
        153,
        154,
        155,
        157,
        158,
        159,
        160,
        161,
        163,
        173,
        246,
        46,
        52,
        53,
        55,
        63,
        65,
        66,
        70,
        105,
        107,
    ),
    (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
    + (276, 282, 283, 285, 293, 295, 296, 300, 334, 336),
)
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270, 291)
LIPS += (308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
# What of the target's own face a swap keeps (facefusion's region masks): its eyes and brows (and glasses), its mouth.
REGIONS = {
    "whole face": (),
    "keep eyes": ("eyes",),
    "keep mouth": ("mouth",),
    "skin only": ("eyes", "mouth"),
}
NEURAL_FILES = ("inswapper_128.onnx", "w600k_r50.onnx")  # swapper, ArcFace recogniser (buffalo_l)


class PerThread:
    """mediapipe graphs (bundled with the package), made by `make` once for each thread that uses them: they are not
    thread-safe. The studio holds such an object in its model cache (face_graphs, the Image tab's pose graphs)."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._local = threading.local()

    def get(self) -> Any:
        """The calling thread's graphs."""
        graphs = getattr(self._local, "graphs", None)
        if graphs is None:
            graphs = self._local.graphs = self._make()
        return graphs


def _face_graphs() -> tuple[Any, Any, Any]:
    """(full-range detector, face mesh for one crop, face mesh for a whole image)."""
    mp = imported("mediapipe")

    return (
        mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5),
        mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True),
        mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MAX_FACES, refine_landmarks=True),
    )


class FaceGraphs(PerThread):
    """mediapipe's full-range face detector and face meshes, one set per thread (see PerThread)."""

    def __init__(self) -> None:
        super().__init__(_face_graphs)


@contextlib.contextmanager
def face_graphs(cache: Any) -> Iterator[FaceGraphs]:
    """The face graphs from the model cache (core.models), held for the block."""
    from core.models import ModelKey

    key = ModelKey("faces", "mediapipe face detection + face mesh (bundled)", None, "cpu", "tflite")
    with cache.acquire(key, FaceGraphs) as graphs:
        yield graphs


_own_graphs = FaceGraphs()  # for callers outside the studio's cache (scripts, tests)


@dataclass
class Face:
    points: np.ndarray  # (468 or 478, 2) float32 pixel coordinates (x, y)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1

    @property
    def mesh(self) -> np.ndarray:
        return self.points[:MESH_POINTS]

    @property
    def keypoints5(self) -> np.ndarray:
        """Eyes (image left first), nose tip, mouth corners (image left first): insightface's order."""
        p = self.points
        eyes = sorted([p[[33, 133]].mean(0), p[[362, 263]].mean(0)], key=lambda e: e[0])
        mouth = sorted([p[61], p[291]], key=lambda m: m[0])
        return np.array([eyes[0], eyes[1], p[1], mouth[0], mouth[1]], dtype=np.float32)


def _mesh(mesh: Any, image: np.ndarray, offset: tuple[int, int] = (0, 0)) -> list[np.ndarray]:
    h, w = image.shape[:2]
    result = mesh.process(np.ascontiguousarray(image))
    return [
        np.array([(p.x * w + offset[0], p.y * h + offset[1]) for p in lm.landmark], dtype=np.float32)
        for lm in result.multi_face_landmarks or []
    ]


def detect_faces(image: np.ndarray, graphs: FaceGraphs | None = None) -> list[Face]:
    """Every face found (up to MAX_FACES), numbered left to right, with `graphs` (see face_graphs).

    The full-range detector finds faces, small ones included; the face mesh then runs on a square crop around
    each (the mesh's own detector only sees faces that fill much of the picture)."""
    detector, crop_mesh, image_mesh = (graphs or _own_graphs).get()
    h, w = image.shape[:2]
    found: list[np.ndarray] = []
    for det in (detector.process(np.ascontiguousarray(image)).detections or [])[:MAX_FACES]:
        box = det.location_data.relative_bounding_box
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        half = max(box.width * w, box.height * h) * 1.0  # the face and as much again around it
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            continue
        for pts in _mesh(crop_mesh, image[y0:y1, x0:x1], (x0, y0)):
            if not any(np.abs(pts.mean(0) - other.mean(0)).max() < 10 for other in found):
                found.append(pts)
    if not found:  # a face so large that the detector misses it: ask the mesh on the whole image
        found = _mesh(image_mesh, image)
    faces = []
    for pts in found:
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int)
        faces.append(Face(pts, (max(0, x0), max(0, y0), min(w, x1), min(h, y1))))
    return sorted(faces, key=lambda f: f.box[0])


# ------------------------------------------------------------------------------------------ classic ----------


def _triangles(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import Delaunay

    return Delaunay(points).simplices


def face_mask(face: Face, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask (255 inside): the face's convex hull without its inner mouth."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(face.mesh.astype(np.int32)), 255)
    cv2.fillPoly(mask, [face.points[INNER_MOUTH].astype(np.int32)], 0)
    return mask


def region_mask(face: Face, shape: tuple[int, int], region: str = "whole face") -> np.ndarray:
    """uint8 mask (255 where the swap paints): the face's hull without its inner mouth, and without the parts of the
    target that `region` keeps (see REGIONS), each grown by a few pixels so that their edges stay the target's."""
    import cv2

    mask = face_mask(face, shape)
    kept = REGIONS[region]
    pad = max(3, int(0.04 * (face.box[2] - face.box[0])))  # about 4% of the face's width
    holes = np.zeros(shape, np.uint8)
    for part in ([*EYES] if "eyes" in kept else []) + ([LIPS] if "mouth" in kept else []):
        cv2.fillConvexPoly(holes, cv2.convexHull(face.points[list(part)].astype(np.int32)), 255)
    if holes.any():
        mask[cv2.dilate(holes, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) > 0] = 0
    return mask


def _warp_triangles(src: np.ndarray, src_pts: np.ndarray, dst_shape: tuple, dst_pts: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of `src` so that src_pts land on dst_pts (one affine map per Delaunay triangle)."""
    import cv2

    out = np.zeros(dst_shape, np.float32)
    h, w = dst_shape[:2]
    for tri in _triangles(dst_pts):
        s, d = src_pts[tri], dst_pts[tri]
        x, y, bw, bh = cv2.boundingRect(d.astype(np.float32))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        sx, sy, sw, sh = cv2.boundingRect(s.astype(np.float32))
        patch = src[sy : sy + sh, sx : sx + sw]
        if patch.size == 0:
            continue
        m = cv2.getAffineTransform((s - [sx, sy]).astype(np.float32), (d - [x0, y0]).astype(np.float32))
        warped = cv2.warpAffine(
            patch.astype(np.float32), m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        tri_mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        corners = np.round(d - [x0, y0]).astype(np.int32)
        cv2.fillConvexPoly(tri_mask, corners, 1.0)
        cv2.polylines(tri_mask, [corners], True, 1.0, 1)  # its edge too: no unpainted seams between triangles
        region = out[y0:y1, x0:x1]
        region[:] = region * (1 - tri_mask[..., None]) + warped * tri_mask[..., None]
    return out


def _transfer_colour(face: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the mean and spread of `face` to `reference` inside `mask`, in LAB space."""
    import cv2

    inside = mask > 0
    a = cv2.cvtColor(face.clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    b = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        am, astd = a[..., c][inside].mean(), a[..., c][inside].std() + 1e-6
        bm, bstd = b[..., c][inside].mean(), b[..., c][inside].std() + 1e-6
        a[..., c] = (a[..., c] - am) * (bstd / astd) + bm
    return cv2.cvtColor(a.clip(0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_classic(
    source: np.ndarray, source_face: Face, target: np.ndarray, target_face: Face, region: str = "whole face"
) -> np.ndarray:
    """The target image with `source_face` placed on `target_face` (classic engine), over `region` (see REGIONS)."""
    import cv2

    warped = _warp_triangles(source, source_face.mesh, target.shape, target_face.mesh)
    painted = region_mask(target_face, target.shape[:2], region)
    hull = np.zeros(target.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(target_face.mesh.astype(np.int32)), 255)
    kept = (hull > 0) & (painted == 0)  # its inner mouth, and what `region` keeps (its eyes...): the target's own
    mask = cv2.erode(painted, np.ones((3, 3), np.uint8), iterations=2)
    if mask.sum() == 0:
        return target
    coloured = _transfer_colour(warped, target, mask)
    x, y, w, h = cv2.boundingRect(mask)
    center = (x + w // 2, y + h // 2)
    near = cv2.dilate(mask, np.ones((15, 15), np.uint8)) > 0  # cloning may nudge pixels far off: keep only near ones
    try:
        # seamlessClone writes into the mask it is given (OpenCV 4.x/5.x): hand it a copy. Given the mask itself,
        # it shrank to a sliver and the result stayed the target's face.
        cloned = cv2.seamlessClone(coloured, target, mask.copy(), center, cv2.NORMAL_CLONE)
    except cv2.error:  # a face touching the border: fall back to a feathered paste
        soft = cv2.GaussianBlur(mask, (0, 0), 3).astype(np.float32)[..., None] / 255
        return (coloured * soft + target * (1 - soft)).astype(np.uint8)
    # cloning also shifts the pixels of the holes it surrounds (Poisson blending): those stay the target's exactly
    return np.where((near & ~kept)[..., None], cloned, target)


# ------------------------------------------------------------------------------------------- neural ----------


@dataclass
class NeuralModels:
    swapper: Any  # onnxruntime session of inswapper_128
    recogniser: Any  # onnxruntime session of ArcFace
    emap: np.ndarray  # (512, 512): maps an ArcFace embedding to the swapper's latent

    @classmethod
    def load(cls, swapper_path: Path, recogniser_path: Path, device: str = "cpu") -> NeuralModels:
        """Both sessions on `device` (see onnx_device): CUDA's provider there, the CPU's elsewhere."""
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        graph = onnx.load(str(swapper_path))
        emap = numpy_helper.to_array(graph.graph.initializer[-1])  # the graph's last initializer, by design
        options = ort.SessionOptions()
        options.log_severity_level = 3
        providers: list = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        return cls(
            swapper=ort.InferenceSession(str(swapper_path), options, providers=providers),
            recogniser=ort.InferenceSession(str(recogniser_path), options, providers=providers),
            emap=emap.astype(np.float32),
        )


def onnx_device(device: str) -> str:
    """Where onnxruntime runs the neural engine for the studio's device (core.device picks it): that CUDA device
    when onnxruntime has CUDA's provider, else the CPU."""
    import onnxruntime as ort

    cuda = device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
    return device if cuda else "cpu"


def neural_available(folder: Path | None) -> bool:
    return bool(folder) and all((Path(folder) / name).is_file() for name in NEURAL_FILES)


def template_points(size: int) -> np.ndarray:
    """Where insightface's alignment puts the 5 key points in a `size` px crop (its face_align.estimate_norm): the
    112 px ArcFace template scaled by size/112 for multiples of 112 (the recogniser), and for multiples of 128 (the
    swapper's 128 px) the template scaled by size/128 and moved right by 8 px per 128: the face keeps ArcFace's size
    inside a wider crop. (Scaling the 112 px template up to 128 px makes the face 14% larger and 7 px lower than
    inswapper_128 was trained on.)"""
    if size % 112 == 0:
        return ARCFACE_5 * (size / 112.0)
    if size % 128 == 0:
        ratio = size / 128.0
        return ARCFACE_5 * ratio + np.array([8.0 * ratio, 0.0], np.float32)
    raise ValueError(f"insightface aligns faces at multiples of 112 or 128 px, not {size}")


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the rotation, uniform scale and shift that maps `source` points onto `target` points with
    the least squared error (Umeyama 1991, as scikit-image's SimilarityTransform, which insightface uses)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, singular, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ flip @ vt
    scale = np.trace(np.diag(singular) @ flip) / src_c.var(0).sum()
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]]).astype(np.float32)


def align(image: np.ndarray, keypoints: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(crop, matrix): the face rotated and scaled onto insightface's template at `size` pixels (norm_crop)."""
    import cv2

    matrix = similarity(keypoints, template_points(size))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0), matrix


def embedding(models: NeuralModels, image: np.ndarray, face: Face) -> np.ndarray:
    """The face's ArcFace embedding, unit length, (512,)."""
    crop, _ = align(image, face.keypoints5, 112)
    blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    name = models.recogniser.get_inputs()[0].name
    vector = models.recogniser.run(None, {name: blob})[0].reshape(-1)
    return vector / (np.linalg.norm(vector) + 1e-9)


def swap_neural(
    models: NeuralModels, source_embedding: np.ndarray, target: np.ndarray, face: Face, region: str = "whole face"
) -> np.ndarray:
    """The target image with the face of `source_embedding` on `face`: inswapper on the aligned 128 px crop,
    pasted back with a feathered mask (without the parts of the target that `region` keeps)."""
    import cv2

    crop, matrix = align(target, face.keypoints5, 128)
    latent = source_embedding.reshape(1, -1) @ models.emap
    latent /= np.linalg.norm(latent) + 1e-9
    inputs = {i.name: None for i in models.swapper.get_inputs()}
    names = list(inputs)
    feed = {names[0]: (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None], names[1]: latent.astype(np.float32)}
    out = models.swapper.run(None, feed)[0][0].transpose(1, 2, 0)
    swapped = (out.clip(0, 1) * 255).astype(np.uint8)
    inverse = cv2.invertAffineTransform(matrix)
    h, w = target.shape[:2]
    back = cv2.warpAffine(swapped, inverse, (w, h), borderValue=0.0)
    box = np.zeros((128, 128), np.float32)
    box[8:-8, 8:-8] = 1.0
    soft = cv2.GaussianBlur(cv2.warpAffine(box, inverse, (w, h)), (0, 0), 4)[..., None]
    if region != "whole face":  # the kept parts stay the target's, with a soft edge
        whole = face_mask(face, (h, w)) > 0
        kept = (whole & (region_mask(face, (h, w), region) == 0)).astype(np.float32)
        soft = soft * (1 - cv2.GaussianBlur(kept, (0, 0), 2)[..., None])
    return (back * soft + target * (1 - soft)).clip(0, 255).astype(np.uint8)
