"""Per-request sampling (core/sampling.py) with transformers' own warpers."""

import torch
from transformers import ClassifierFreeGuidanceLogitsProcessor

from core.sampling import seeded_processors


def draws(seed: int, steps: int = 20, **kwargs) -> list[int]:
    processors = seeded_processors(seed, temperature=kwargs.pop("temperature", 1.0), device="cpu", **kwargs)
    logits = torch.randn(steps, 1, 50, generator=torch.Generator().manual_seed(0))
    out = []
    for step in logits:
        scores = processors(torch.zeros((1, 1), dtype=torch.long), step.clone())
        assert torch.isfinite(scores).sum() == 1  # exactly one token left for the library's greedy step
        out.append(int(scores.argmax()))
    return out


def test_the_same_seed_draws_the_same_tokens_whatever_else_uses_torch():
    first = draws(7, top_k=None, top_p=None)
    torch.rand(1000)  # the global generator moves; ours does not care
    assert draws(7, top_k=None, top_p=None) == first
    assert draws(8, top_k=None, top_p=None) != first


def test_top_k_keeps_the_draws_among_the_likeliest():
    logits = torch.randn(20, 1, 50, generator=torch.Generator().manual_seed(0))
    picked = draws(3, top_k=2, top_p=None)
    assert all(p in logits[i, 0].topk(2).indices.tolist() for i, p in enumerate(picked))


def test_a_processor_the_library_appends_runs_before_our_draw():
    """MusicGen appends its classifier-free guidance (which halves the batch) to the list it is given."""
    processors = seeded_processors(1, temperature=1.0, top_k=250, top_p=None, device="cpu")
    processors.append(ClassifierFreeGuidanceLogitsProcessor(3.0))
    assert [type(p).__name__ for p in processors] == [
        "ClassifierFreeGuidanceLogitsProcessor",
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "Draw",
    ]
    scores = processors(torch.zeros((1, 1), dtype=torch.long), torch.randn(2, 64))  # conditional + unconditional
    assert scores.shape == (1, 64) and torch.isfinite(scores).sum() == 1
