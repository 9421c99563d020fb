"""`python studio.py generate {image,text,music,speech,video,lora,faceswap,extras} ...`: the UI's engines, no
server.

Prints the path of each saved output on stdout, one a line (its recipe is beside it, and inside it), so that
`path=$(python studio.py generate image ...)` works; the seed used goes to stderr. A refused request prints one
sentence on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="studio.py generate", description="Generate without the web UI; prints the paths of the saved outputs."
    )
    sub = p.add_subparsers(dest="tab", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--model", help="a model from the tab's list (or any, with STUDIO_ALLOW_CUSTOM_MODELS=1)")
        q.add_argument("--seed", type=int, default=-1, help="-1 = random (default); the seed used is printed")
        q.add_argument("--output-dir", type=Path, help="where to save (env STUDIO_OUTPUT_DIR, default outputs/)")
        q.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="env STUDIO_DEVICE")
        q.add_argument("--offline", action="store_true", default=None, help="never contact the Hugging Face Hub")
        q.add_argument("--tiny", action="store_true", default=None, help="tiny random-weight models (noise)")

    image = sub.add_parser("image", help="text-to-image, or image-to-image with --init-image")
    image.add_argument("--prompt", required=True)
    image.add_argument("--negative-prompt", default="")
    image.add_argument("--steps", type=int, help="default: the model's own")
    image.add_argument("--guidance", type=float, help="CFG scale; default: the model's own")
    image.add_argument("--width", type=int)
    image.add_argument("--height", type=int)
    image.add_argument("--num-images", type=int, default=1)
    image.add_argument("--init-image", help="an image to start from (image-to-image)")
    image.add_argument("--mask", help="with --init-image: inpaint, repainting where this picture is white")
    image.add_argument("--strength", type=float, default=0.5)
    image.add_argument("--outpaint", help="with --init-image: extend these sides, e.g. right or left,right,top")
    image.add_argument("--outpaint-pixels", type=int, default=128, help="pixels added to each side (--outpaint)")
    image.add_argument("--sampler", help="AUTOMATIC1111's name, e.g. 'DPM++ 2M Karras'; default: the model's own")
    image.add_argument(
        "--style", action="append", default=[], help="a style that wraps the prompt (repeatable, in order)"
    )
    image.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="a LoRA from STUDIO_LORA_DIR (repeatable); the same as <lora:NAME:WEIGHT> in the prompt",
    )
    image.add_argument("--control-image", help="a picture whose edges, pose or scribble steer the result (ControlNet)")
    image.add_argument("--control-type", default="Canny", help="Canny, Pose, Scribble or Depth (default: Canny)")
    image.add_argument("--control-scale", type=float, default=1.0, help="ControlNet strength, 0-2 (default: 1)")
    image.add_argument("--control-map", action="store_true", help="the control image already is a control map")
    image.add_argument(
        "--control-model", default="Automatic", help="a ControlNet folder name in STUDIO_CONTROLNET_DIR"
    )
    image.add_argument("--ip-adapter-image", help="a reference picture whose style or subject the result takes")
    image.add_argument("--ip-adapter-scale", type=float, default=0.6, help="how much it takes, 0-1.5 (default: 0.6)")
    common(image)

    text = sub.add_parser("text", help="one answer from the chat model")
    text.add_argument("--prompt", required=True)
    text.add_argument("--system-prompt")
    text.add_argument("--max-new-tokens", type=int, default=256)
    text.add_argument("--temperature", type=float, default=0.7)
    text.add_argument("--top-p", type=float, default=0.9)
    text.add_argument("--top-k", type=int, default=50)
    text.add_argument("--repetition-penalty", type=float, default=1.1)
    common(text)

    music = sub.add_parser("music", help="text-to-music with MusicGen")
    music.add_argument("--prompt", required=True, help="a description of the music")
    music.add_argument("--duration", type=float, default=8.0)
    music.add_argument("--top-k", type=int, default=250)
    music.add_argument("--top-p", type=float, default=0.0)
    music.add_argument("--temperature", type=float, default=1.0)
    music.add_argument("--guidance", type=float, default=3.0)
    music.add_argument("--melody", help="an audio clip to follow (melody models)")
    music.add_argument("--continue", dest="continue_from", help="an audio clip to go on from: --duration s more")
    common(music)

    speech = sub.add_parser("speech", help="text to speech (the Voice tab)")
    speech.add_argument("--text", help="what to say (sentences are spoken in order); - reads stdin")
    speech.add_argument("--voice", default="", help="a voice id, e.g. hibari:heart (default: env STUDIO_VOICE)")
    speech.add_argument("--language", default="", help="a language code, e.g. en or fr (default: the voice's own)")
    speech.add_argument("--speed", type=float, default=1.0, help="0.5 (slow) to 2 (fast)")
    speech.add_argument("--seed", type=int, default=-1, help="-1 = random (default); the seed used is printed")
    speech.add_argument("--output-dir", type=Path, help="where to save (env STUDIO_OUTPUT_DIR, default outputs/)")
    speech.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="env STUDIO_DEVICE")
    speech.add_argument("--offline", action="store_true", default=None, help="never contact the Hugging Face Hub")
    speech.add_argument("--tiny", action="store_true", default=None, help="tiny random-weight models (noise)")
    speech.add_argument("--list-voices", action="store_true", help="print the voices offered (id, language) and stop")

    video = sub.add_parser("video", help="text to video (or picture to video with --first-frame) with Wan")
    video.add_argument("--prompt", required=True)
    video.add_argument("--negative-prompt", default="")
    video.add_argument("--frames", type=int, default=33, help="4k+1 frames (default 33)")
    video.add_argument("--fps", type=int, help="frames per second (default: the model's own)")
    video.add_argument("--width", type=int, help="default: the model's own")
    video.add_argument("--height", type=int, help="default: the model's own")
    video.add_argument("--steps", type=int, help="default: the model's own")
    video.add_argument("--guidance", type=float, help="default: the model's own")
    video.add_argument("--first-frame", help="a picture the video starts from (Wan2.2-TI2V-5B)")
    video.add_argument("--soundtrack", help="an audio clip muxed under the video (AAC)")
    common(video)

    lora = sub.add_parser("lora", help="train a LoRA on your pictures (the Train tab); it lands in STUDIO_LORA_DIR")
    lora.add_argument(
        "--images", nargs="+", required=True,
        help="5-50 pictures, zips or folders of them (kohya's layout: name.txt beside name.png is its caption)",
    )  # fmt: skip
    lora.add_argument("--name", required=True, help="the LoRA's name: its file, and <lora:NAME:1> in prompts")
    lora.add_argument("--trigger", default="", help="the word put before every caption, e.g. 'sks dog'")
    lora.add_argument("--steps", type=int, default=1000)
    lora.add_argument("--rank", type=int, default=16)
    lora.add_argument("--learning-rate", type=float, help="default: the base model's own (1e-4)")
    lora.add_argument("--resolution", type=int, help="default: the base model's own (512 for SD 1.5)")
    lora.add_argument("--batch-size", type=int, default=1)
    lora.add_argument("--train-text-encoder", action="store_true", help="a LoRA on the text encoder too (SD 1.x)")
    lora.add_argument(
        "--square", action="store_true", help="crop every picture square (default: each keeps its shape, in buckets)"
    )
    lora.add_argument("--resume", action="store_true", help="go on from the last checkpoint of --name")
    lora.add_argument("--overwrite", action="store_true", help="replace a LoRA of the same name")
    lora.add_argument(
        "--consent", action="store_true",
        help="I have the consent of the people shown, or the right to use these pictures (needed where faces show)",
    )  # fmt: skip
    common(lora)

    swap = sub.add_parser("faceswap", help="put the face of --source on the face(s) of --target")
    swap.add_argument("--source", required=True, help="image with the face to use")
    swap.add_argument("--target", required=True, help="image (or .mp4/.mov/.webm video) to put it on")
    swap.add_argument(
        "--consent",
        action="store_true",
        help="I have the consent of the people shown, or the right to use these images (required)",
    )
    swap.add_argument("--face-index", type=int, default=-1, help="-1 = all faces; else the face's number")
    swap.add_argument("--engine", choices=["auto", "classic", "neural"], default="auto")
    swap.add_argument(
        "--region",
        choices=["whole face", "keep eyes", "keep mouth", "skin only"],
        default="whole face",
        help="what of the target's face to paint (keep eyes: its own eyes and glasses stay)",
    )
    swap.add_argument("--enhance", default="None", help="a face restorer for each swapped face (see generate extras)")
    swap.add_argument("--enhance-blend", type=float, default=1.0, help="0: the swap as it is, 1: the restorer's alone")
    swap.add_argument("--prompt", help=argparse.SUPPRESS)
    common(swap)

    extras = sub.add_parser("extras", help="upscale a picture and restore its faces (the Extras tab)")
    extras.add_argument("--image", required=True, help="the picture")
    extras.add_argument("--upscaler", default="None", help="an upscaler's name (STUDIO_UPSCALER_DIR's files too)")
    extras.add_argument("--scale", type=float, default=2, help="how many times larger, 1 to 8 (1: faces only)")
    extras.add_argument("--width", type=int, default=0, help="or scale to this width in pixels")
    extras.add_argument("--height", type=int, default=0, help="and/or this height (both: cropped to fit)")
    extras.add_argument("--face-restorer", default="None", help="a face restorer's name")
    extras.add_argument("--restore-strength", type=float, default=1.0, help="0: the faces as they were")
    extras.add_argument("--prompt", help=argparse.SUPPRESS)
    common(extras)
    return p


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from core import checks
    from core.errors import UserError
    from core.models import make_cache
    from core.settings import from_env

    try:
        settings = from_env(output_dir=args.output_dir, device=args.device, offline=args.offline, tiny=args.tiny)
    except ValueError as exc:
        print(f"studio.py: {exc}", file=sys.stderr)
        return 2
    cache = make_cache(settings)
    checks.limit_pillow()
    try:
        for line in _generate(args, settings, cache):  # saved paths on stdout, one a line; notes on stderr
            print(line, flush=True, file=sys.stderr if isinstance(line, Note) else sys.stdout)
    except UserError as exc:
        print(f"studio.py: {exc}", file=sys.stderr)
        return 2
    return 0


def _train(args: argparse.Namespace, settings, cache):
    """`generate lora`: folders become their pictures (and their name.txt captions); the saved LoRA's path."""
    from tabs.train import dataset
    from tabs.train.engine import TrainParams, base_choices, base_of, train_lora

    images, captions = [], []
    for given in args.images:
        folder = Path(given)
        if not folder.is_dir():
            images.append(given)
            continue
        for picture in sorted(p for p in folder.iterdir() if p.suffix.lower() in dataset.SUFFIXES):
            images.append(str(picture))
            beside = picture.with_suffix(".txt")
            if beside.is_file():
                captions.append(
                    [picture.name, beside.read_text(errors="replace").strip()[: dataset.MAX_CAPTION_CHARS]]
                )
    base = base_of(args.model or base_choices(settings)[0], settings)
    params = TrainParams(
        args.name, trigger=args.trigger, steps=args.steps, rank=args.rank,
        learning_rate=args.learning_rate or base.learning_rate, resolution=args.resolution or base.resolution,
        batch_size=args.batch_size, train_text_encoder=args.train_text_encoder, seed=max(args.seed, 0),
        buckets=not args.square,
    )  # fmt: skip
    options = dict(base_model=args.model, captions=captions or None, consent=args.consent or None,
                   resume=args.resume, overwrite=args.overwrite)  # fmt: skip
    shown = -1
    for update in train_lora(cache, settings, params, images, **options):
        if update.done or update.stopped:
            final = update
        elif update.losses and len(update.losses) * 10 // params.steps > shown:  # a line every tenth of the run
            shown = len(update.losses) * 10 // params.steps
            yield Note(update.status())
    yield str(final.path)
    yield Note(final.status())


class Note(str):
    """A line for the person at the terminal (the seed used), not for a script reading the saved paths."""


def _generate(args: argparse.Namespace, settings, cache):
    """The saved paths, one by one (then a Note with the seed where there is one)."""
    if args.tab == "image":
        from tabs.image import OUTPAINT_STRENGTH, ImageParams, generate_image, model_choices, model_defaults
        from tabs.image.control import Control
        from tabs.image.ip_adapter import Reference

        d = model_defaults(args.model or model_choices(settings)[0])
        tags = "".join(f" <lora:{lora}>" for lora in args.lora)
        params = ImageParams(
            args.prompt + tags,
            negative_prompt=args.negative_prompt,
            steps=args.steps or d.steps,
            guidance_scale=d.guidance if args.guidance is None else args.guidance,
            width=args.width or d.size,
            height=args.height or d.size,
            seed=args.seed,
            num_images=args.num_images,
            strength=OUTPAINT_STRENGTH if args.outpaint else args.strength,
            sampler=args.sampler,
            styles=tuple(args.style),
        )
        final = list(
            generate_image(
                cache,
                settings,
                params,
                model=args.model,
                init_image=args.init_image,
                mask=args.mask,
                outpaint=(args.outpaint, args.outpaint_pixels) if args.outpaint else None,
                control=Control(
                    args.control_image,
                    args.control_type,
                    args.control_scale,
                    model=args.control_model,
                    is_map=args.control_map,
                )
                if args.control_image
                else None,
                reference=Reference(args.ip_adapter_image, args.ip_adapter_scale) if args.ip_adapter_image else None,
            )
        )[-1]
        yield from (str(p) for p in final.images)
        yield Note(f"seed {final.seed}")
    elif args.tab == "text":
        from tabs.text.engine import DEFAULT_SYSTEM_PROMPT, TextParams, generate_text

        params = TextParams(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
            repetition_penalty=args.repetition_penalty, seed=args.seed,
        )  # fmt: skip
        final = list(
            generate_text(
                cache,
                settings,
                args.prompt,
                params=params,
                model=args.model,
                system_prompt=DEFAULT_SYSTEM_PROMPT if args.system_prompt is None else args.system_prompt,
            )
        )[-1]
        yield str(final.saved)
        yield Note(f"seed {final.seed}")
    elif args.tab == "music":
        from tabs.music.engine import MusicParams, generate_music

        params = MusicParams(
            args.prompt, duration=args.duration, top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
            guidance_scale=args.guidance, seed=args.seed,
        )  # fmt: skip
        final = list(
            generate_music(
                cache, settings, params, model=args.model, melody=args.melody, continue_from=args.continue_from
            )
        )[-1]
        yield str(final.path)
        yield Note(f"seed {final.seed}")
    elif args.tab == "speech":
        from core.errors import UserError
        from tabs.voice import SpeechParams, speak, voice_choices

        if args.list_voices:
            yield from (f"{v.id}\t{v.language}\t{v.label}\t{v.where}" for v in voice_choices(settings))
            return
        if args.text is None:
            raise UserError("Give the text to speak with --text (or --text - to read it from stdin).")
        text = sys.stdin.read() if args.text == "-" else args.text
        params = SpeechParams(text, voice=args.voice, language=args.language, speed=args.speed, seed=args.seed)
        final = list(speak(cache, settings, params))[-1]
        yield str(final.path)
        yield Note(f"seed {final.seed}")
    elif args.tab == "video":
        from tabs.video.engine import VideoParams, generate_video, model_choices, model_defaults

        d = model_defaults(args.model or model_choices(settings)[0], settings=settings)
        params = VideoParams(
            args.prompt, negative_prompt=args.negative_prompt, num_frames=args.frames, fps=args.fps or d.fps,
            width=args.width or d.width, height=args.height or d.height, steps=args.steps or d.steps,
            guidance_scale=d.guidance if args.guidance is None else args.guidance, seed=args.seed,
        )  # fmt: skip
        options = dict(model=args.model, first_frame=args.first_frame, soundtrack=args.soundtrack)
        final = list(generate_video(cache, settings, params, **options))[-1]
        yield str(final.path)
        yield Note(f"seed {final.seed}")
    elif args.tab == "lora":
        yield from _train(args, settings, cache)
    elif args.tab == "extras":
        from tabs.extras import ExtrasParams, enhance_picture

        params = ExtrasParams(
            args.upscaler, scale=args.scale, target_width=args.width, target_height=args.height,
            face_restorer=args.face_restorer, restore_strength=args.restore_strength,
        )  # fmt: skip
        yield str(list(enhance_picture(cache, settings, args.image, params))[-1].path)
    else:
        from tabs.faceswap import swap_face_image, swap_face_video

        options = dict(
            consent=args.consent or None,
            face_index=args.face_index,
            engine=args.engine,
            region=args.region,
            face_enhancer=args.enhance,
            enhance_blend=args.enhance_blend,
        )
        if Path(args.target).suffix.lower() in (".mp4", ".mov", ".webm", ".mkv"):
            final = list(swap_face_video(cache, settings, args.source, args.target, **options))[-1].result
        else:
            final = swap_face_image(cache, settings, args.source, args.target, **options)
        yield str(final.path)
