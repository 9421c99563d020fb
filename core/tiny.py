"""Tiny random-weight models of the same classes as the studio's defaults, built locally in seconds.

`--tiny` uses them so that every flow can be tried with nothing downloaded (their outputs are noise), and the
tests build the very same models. Each builder writes a complete model folder (safetensors weights, configs,
tokenizer) that loads through the normal from_pretrained path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

_build_lock = threading.Lock()


def default_dir() -> Path:
    from core.settings import _default_cache_dir

    return _default_cache_dir() / "tiny"


def _tokenizer_corpus() -> list[str]:
    """Local text to train a byte-level BPE on: the source of a few standard-library modules."""
    import argparse
    import inspect
    import json
    import textwrap

    return [inspect.getsource(m) for m in (argparse, json.decoder, textwrap, inspect)]


def build_text(folder: Path) -> Path:
    """A 2-layer Qwen2ForCausalLM with a byte-level BPE tokenizer and a ChatML chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "tiny:qwen2": build_text,
}


def ensure(name: str, root: Path) -> Path:
    """The folder of tiny model `name` under `root`, built on first use (atomically: build, then rename)."""
    if name not in BUILDERS:
        raise ValueError(f"Unknown tiny model {name!r}; known: {', '.join(BUILDERS)}.")
    folder = Path(root) / name.split(":", 1)[1]
    if (folder / ".complete").exists():
        return folder
    with _build_lock:
        if (folder / ".complete").exists():
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
        try:
            BUILDERS[name](tmp)
            (tmp / ".complete").write_text("built by core/tiny.py\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
