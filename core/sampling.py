"""Seeded sampling that belongs to one request.

transformers' `generate(do_sample=True)` draws from torch's process-wide random generator, so two requests running at
once (STUDIO_CONCURRENCY > 1) consume each other's random numbers and the same seed stops giving the same answer.
Here each request gets its own `torch.Generator`: the library's own temperature, top-k and top-p warpers shape the
distribution, one token is drawn from it with the request's generator, and every other token is masked out, so the
library's greedy step picks exactly the drawn token. Call `generate` with `do_sample=False` and these processors.
"""

from typing import Any

from core.device import imported


def seeded_processors(seed: int, *, temperature: float, top_k: int | None, top_p: float | None, device: Any) -> Any:
    """A LogitsProcessorList that samples with its own generator seeded with `seed` (temperature > 0)."""
    torch = imported("torch")
    LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper = imported(
        "transformers",
        "LogitsProcessor",
        "LogitsProcessorList",
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
    )

    class Draw(LogitsProcessor):
        """Draws one token per row from softmax(scores) with this request's generator; masks out all others."""

        def __init__(self) -> None:
            self.generator = torch.Generator(device=torch.device(device))
            self.generator.manual_seed(seed)

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            probs = torch.softmax(scores.float(), dim=-1)
            picked = torch.multinomial(probs, num_samples=1, generator=self.generator)
            drawn = torch.full_like(scores, float("-inf"))
            return drawn.scatter_(1, picked, 0.0)

    class OwnStage(LogitsProcessorList):
        """Our warpers and draw, kept last: a processor the library appends (MusicGen's classifier-free guidance,
        which also halves the batch) goes before them, where the library's own sampling would put it."""

        def __init__(self, stage: list) -> None:
            super().__init__(stage)
            self.first_own = stage[0] if stage else None

        def append(self, processor: Any) -> None:
            self.insert(self.index(self.first_own) if self.first_own is not None else len(self), processor)

    stage: list = [TemperatureLogitsWarper(temperature)]
    if top_k:
        stage.append(TopKLogitsWarper(top_k))
    if top_p and 0 < top_p < 1:
        stage.append(TopPLogitsWarper(top_p))
    stage.append(Draw())
    return OwnStage(stage)


# Passed to generate() with these processors: no library sampling, and none of the model's own sampling defaults.
GREEDY = dict(do_sample=False, temperature=None, top_p=None, top_k=None)
