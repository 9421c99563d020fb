"""GAN lab: train a small conditional GAN on scikit-learn's bundled 8x8 handwritten digits, live, on the CPU.

The one tab that makes real (non-noise) output with no downloaded model at all. Reads top to bottom: the two
networks, the lab (plain Python: train epoch by epoch, sample, walk the latent space), then the UI (`build`).
"""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import checks, outputs, provenance, saving
from core.device import import_lock, in_passing_thread
from core.settings import Settings

EXPLANATION = (
    "The **generator** turns random numbers (and the digit it is asked for) into an 8x8 picture, trying to make it "
    "look like a real handwritten digit. The **discriminator** looks at real digits and the generator's fakes and "
    "learns to tell them apart; each network improves by beating the other."
)
Z = 64  # size of the random input
BATCH = 64
MAX_EPOCHS = 300
GRID_COLUMNS = 8  # samples per digit in the picture


def _networks():
    with import_lock:
        import torch
        from torch import nn

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(Z + 10, 512), nn.BatchNorm1d(512), nn.ReLU())
            self.up = nn.Sequential(
                nn.ConvTranspose2d(128, 64, 4, 2, 1),
                nn.BatchNorm2d(64),
                nn.ReLU(),
                nn.ConvTranspose2d(64, 1, 4, 2, 1),
                nn.Tanh(),
            )

        def forward(self, z, onehot):  # (B, 64), (B, 10) -> (B, 1, 8, 8) in [-1, 1]
            return self.up(self.fc(torch.cat([z, onehot], 1)).view(-1, 128, 2, 2))

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(11, 64, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(64, 128, 4, 2, 1),
                nn.BatchNorm2d(128),
                nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Linear(512, 1),
            )

        def forward(self, x, onehot):  # (B, 1, 8, 8), (B, 10) -> (B, 1) logits
            planes = onehot[:, :, None, None].expand(-1, -1, 8, 8)
            return self.net(torch.cat([x, planes], 1))

    return Generator, Discriminator


@dataclass
class GanLab:
    """One learner's GAN: the networks, their optimisers and what happened so far."""

    seed: int = 0
    epoch: int = 0
    g_losses: list[float] = field(default_factory=list)  # mean generator loss per epoch
    d_losses: list[float] = field(default_factory=list)  # mean discriminator loss per epoch
    seconds: float = 0.0

    def __post_init__(self) -> None:
        import torch
        from sklearn.datasets import load_digits

        generator, discriminator = _networks()
        torch.manual_seed(self.seed)
        self.G, self.D = generator(), discriminator()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        digits = load_digits()
        self.x = torch.tensor(digits.images / 8.0 - 1.0, dtype=torch.float32)[:, None]  # (1797, 1, 8, 8) in [-1, 1]
        self.y = torch.tensor(digits.target)
        self.rng = torch.Generator().manual_seed(self.seed)
        self.fixed_z = torch.randn(10 * GRID_COLUMNS, Z, generator=torch.Generator().manual_seed(self.seed + 1))
        ends = torch.Generator().manual_seed(self.seed + 2)
        self.walk_ends = (torch.randn(Z, generator=ends), torch.randn(Z, generator=ends))

    @property
    def components(self) -> dict[str, Any]:
        """What the lab holds in memory (the model cache measures it): both networks and the training digits."""
        return {"generator": self.G, "discriminator": self.D, "digits": self.x}

    def train_epoch(self) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        self.G.train(), self.D.train()
        order = torch.randperm(len(self.x), generator=self.rng)
        g_sum = d_sum = 0.0
        batches = 0
        for start in range(0, len(order) - BATCH + 1, BATCH):
            idx = order[start : start + BATCH]
            real, onehot = self.x[idx], F.one_hot(self.y[idx], 10).float()
            z = torch.randn(BATCH, Z, generator=self.rng)
            fake = self.G(z, onehot)
            d_loss = F.binary_cross_entropy_with_logits(
                self.D(real, onehot), torch.full((BATCH, 1), 0.9)
            ) + F.binary_cross_entropy_with_logits(self.D(fake.detach(), onehot), torch.zeros(BATCH, 1))
            self.opt_d.zero_grad()
            d_loss.backward()
            self.opt_d.step()
            g_loss = F.binary_cross_entropy_with_logits(self.D(fake, onehot), torch.ones(BATCH, 1))
            self.opt_g.zero_grad()
            g_loss.backward()
            self.opt_g.step()
            g_sum, d_sum, batches = g_sum + g_loss.item(), d_sum + d_loss.item(), batches + 1
        self.epoch += 1
        self.g_losses.append(g_sum / batches)
        self.d_losses.append(d_sum / batches)
        return self.g_losses[-1], self.d_losses[-1]

    def samples(self) -> np.ndarray:
        """(10 * GRID_COLUMNS, 8, 8) in [0, 1]: the same random inputs every time, digit by digit."""
        import torch
        import torch.nn.functional as F

        self.G.eval()
        labels = torch.arange(10).repeat_interleave(GRID_COLUMNS)
        with torch.no_grad():
            out = self.G(self.fixed_z, F.one_hot(labels, 10).float())
        return ((out[:, 0] + 1) / 2).clamp(0, 1).numpy()

    def walk(self, t: float) -> np.ndarray:
        """(10, 8, 8): every digit drawn from a point `t` (0..1) of the way between two random inputs."""
        import torch
        import torch.nn.functional as F

        self.G.eval()
        a, b = self.walk_ends
        z = ((1 - t) * a + t * b).expand(10, -1)
        with torch.no_grad():
            out = self.G(z, F.one_hot(torch.arange(10), 10).float())
        return ((out[:, 0] + 1) / 2).clamp(0, 1).numpy()


def grid_picture(images: np.ndarray, columns: int, scale: int = 8) -> Any:
    """A PIL picture of 8x8 images laid out in rows of `columns`, each pixel `scale` pixels wide."""
    from PIL import Image

    rows = (len(images) + columns - 1) // columns
    canvas = np.ones((rows * 9 + 1, columns * 9 + 1), np.float32) * 0.3
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * 9 + 1 : r * 9 + 9, c * 9 + 1 : c * 9 + 9] = im
    pic = Image.fromarray((canvas * 255).astype(np.uint8))
    return pic.resize((pic.width * scale, pic.height * scale), Image.Resampling.NEAREST)


def loss_picture(g: list[float], d: list[float], width: int = 480, height: int = 200) -> Any:
    """Both losses per epoch as lines: generator in indigo, discriminator in orange."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    values = g + d
    if len(g) >= 1:
        low, high = min(values), max(values)
        span = (high - low) or 1.0

        def points(series):
            n = max(len(series) - 1, 1)
            return [
                (10 + i * (width - 20) / n, height - 24 - (v - low) / span * (height - 44))
                for i, v in enumerate(series)
            ]

        for series, colour in ((g, (79, 70, 229)), (d, (234, 88, 12))):
            pts = points(series)
            draw.line(pts if len(pts) > 1 else pts * 2, fill=colour, width=2)
        # the legend along the bottom: the page puts the picture's label over its top-left corner
        draw.text((12, height - 16), f"generator {g[-1]:.2f}", fill=(79, 70, 229))
        draw.text((140, height - 16), f"discriminator {d[-1]:.2f}", fill=(234, 88, 12))
    draw.text((width - 110, height - 16), f"epoch {len(g)}", fill=(90, 90, 90))
    return image


@dataclass
class GanUpdate:
    epoch: int
    g_loss: float
    d_loss: float
    samples: Any  # PIL picture
    losses: Any  # PIL picture
    saved: Any = None  # path of the saved samples, at the end of a run

    def status(self) -> str:
        return f"Epoch {self.epoch}: generator loss {self.g_loss:.3f}, discriminator loss {self.d_loss:.3f}"


def train(
    lab: GanLab,
    epochs: int,
    settings: Settings,
    stop: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[GanUpdate]:
    """Train `epochs` more epochs (Stop pauses; training again resumes), yielding after each; then save."""
    import torch

    epochs = int(checks.check_number(epochs, checks.named("epochs", "number of epochs"), 1, MAX_EPOCHS, integer=True))
    stop = stop or threading.Event()
    update = None
    for i in range(epochs):
        if stop.is_set():
            break
        start = time.perf_counter()

        def epoch() -> tuple[float, float]:
            with torch.random.fork_rng():  # the lab has its own random stream; the global one is left alone
                return lab.train_epoch()

        g_loss, d_loss = in_passing_thread(epoch)  # see core.device: no OpenMP team left in Gradio's threads
        lab.seconds += time.perf_counter() - start
        if progress:
            progress((i + 1) / epochs, f"Epoch {lab.epoch}")
        update = GanUpdate(
            lab.epoch,
            g_loss,
            d_loss,
            grid_picture(lab.samples(), GRID_COLUMNS),
            loss_picture(lab.g_losses, lab.d_losses),
        )
        yield update
    if update is not None:
        recipe = outputs.base_recipe(
            "gan",
            "conditional DCGAN on scikit-learn digits (trained here)",
            seed=lab.seed,
            epochs=lab.epoch,
            g_loss=update.g_loss,
            d_loss=update.d_loss,
            train_seconds=round(lab.seconds, 2),
            versions=outputs.library_versions("torch", "scikit-learn"),
        )
        write = provenance.png_writer(update.samples)
        update.saved = saving.finish(settings, "gan", f"digits-epoch-{lab.epoch}", "png", recipe, write).path
        yield update
