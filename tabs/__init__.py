"""The tabs, in display order: (title, module). Each module has build(ctx) and a plain-Python generate_*()."""

from tabs import faceswap, gan, image, music, text, verify

TABS = (
    ("Image", image),
    ("Text", text),
    ("Music", music),
    ("Face swap", faceswap),
    ("GAN lab", gan),
    ("Verify", verify),
)
