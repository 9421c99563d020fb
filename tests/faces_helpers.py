"""Real faces that ship with the studio (public domain) and stand-ins for the neural engine's model files."""

from pathlib import Path

import numpy as np
from PIL import Image

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "faces"
ASTRONAUT = ASSETS / "astronaut.jpg"  # scikit-image's astronaut (NASA, public domain), 512x512
HOPPER = ASSETS / "grace_hopper.jpg"  # matplotlib's Grace Hopper (US Navy, public domain)


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def two_faces(tmp_path) -> Path:
    """The astronaut and Grace Hopper side by side, same height."""
    a, g = Image.open(ASTRONAUT).convert("RGB"), Image.open(HOPPER).convert("RGB")
    g = g.resize((round(g.width * a.height / g.height), a.height))
    both = Image.new("RGB", (a.width + g.width, a.height))
    both.paste(a, (0, 0))
    both.paste(g, (a.width, 0))
    path = tmp_path / "two.png"
    both.save(path)
    return path


def stand_in_models(folder: Path) -> Path:
    """ONNX files with inswapper_128's and ArcFace's exact input/output signatures (not their weights):
    the swapper returns 1 - target (so a swap is easy to see), the recogniser a projection of mean colour."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    one = numpy_helper.from_array(np.ones((1, 3, 128, 128), np.float32), "one")
    emap = numpy_helper.from_array(rng.normal(size=(512, 512)).astype(np.float32), "emap")  # last, as in inswapper
    swapper = helper.make_graph(
        [helper.make_node("Sub", ["one", "target"], ["output"])],
        "inswapper_stand_in",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        [one, emap],
    )
    onnx.save(helper.make_model(swapper, opset_imports=[helper.make_opsetid("", 17)]), folder / "inswapper_128.onnx")
    w = numpy_helper.from_array(rng.normal(size=(3, 512)).astype(np.float32), "w")
    recogniser = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["683"]),
        ],
        "arcface_stand_in",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])],
        [w],
    )
    onnx.save(helper.make_model(recogniser, opset_imports=[helper.make_opsetid("", 17)]), folder / "w600k_r50.onnx")
    return folder


def make_video(path: Path, frames: int = 12, fps: int = 12, audio: bool = True, size: int = 512) -> Path:
    """A short H.264 video (size x size) of the astronaut drifting slowly, with a sine tone as AAC audio. The
    container follows the suffix: .mp4, or .h264 for a bare stream that states no length."""
    import av

    base = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((size, size)))
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = base.shape[1], base.shape[0], "yuv420p"
        a = out.add_stream("aac", rate=44100) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i * 2, axis=1).copy(), format="rgb24")
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            samples = int(44100 * frames / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            af.sample_rate = 44100
            for p in a.encode(af):
                out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path
