"""The tabs, in display order: (title, package). Each package has engine.py (plain Python: parameters, checks and
the generate functions), page.py (the Gradio page) and build(ctx), which builds the page."""

from tabs import extras, faceswap, gan, image, music, text, train, verify, video, voice

TABS = (
    (image.TITLE, image),
    (text.TITLE, text),
    (music.TITLE, music),
    (voice.TITLE, voice),
    (video.TITLE, video),
    (train.TITLE, train),
    (faceswap.TITLE, faceswap),
    (extras.TITLE, extras),
    (gan.TITLE, gan),
    (verify.TITLE, verify),
)
