"""The GAN lab: a real GAN trained here on scikit-learn's bundled digits (seeded, short runs)."""

import threading

import numpy as np
import pytest

from core.errors import UserError
from tabs.gan.engine import GanLab, train


def test_losses_move_and_samples_change_across_epochs(settings):
    lab = GanLab(seed=0)
    before = lab.samples()
    updates = list(train(lab, 3, settings))
    assert [u.epoch for u in updates[:-1]] == [1, 2, 3] and updates[-1].saved.exists()
    assert len(set(np.round(lab.g_losses, 4))) == 3 and len(set(np.round(lab.d_losses, 4))) == 3
    after = lab.samples()
    assert np.abs(after - before).mean() > 0.05
    assert after.shape == (80, 8, 8) and 0 <= after.min() and after.max() <= 1


def test_same_seed_same_gan(settings):
    a, b, c = GanLab(seed=3), GanLab(seed=3), GanLab(seed=4)
    for lab in (a, b, c):
        list(train(lab, 2, settings))
    assert np.array_equal(a.samples(), b.samples()) and a.g_losses == b.g_losses
    assert not np.array_equal(a.samples(), c.samples())


def test_the_latent_walk_moves(settings):
    lab = GanLab(seed=1)
    list(train(lab, 1, settings))
    start, middle, end = lab.walk(0.0), lab.walk(0.5), lab.walk(1.0)
    assert start.shape == (10, 8, 8)
    assert np.abs(start - end).mean() > np.abs(start - middle).mean() * 0.5 > 0


def test_stop_pauses_and_training_resumes(settings):
    lab = GanLab(seed=0)
    stop = threading.Event()
    updates = []
    for update in train(lab, 50, settings, stop=stop):
        updates.append(update)
        stop.set()  # after the first epoch
    assert lab.epoch == 1 and updates[-1].saved is not None
    list(train(lab, 1, settings))
    assert lab.epoch == 2


@pytest.mark.parametrize("epochs", [0, -3, 10_000, "lots", 2.5])
def test_bad_epoch_counts(settings, epochs):
    with pytest.raises(
        UserError, match=r"number of epochs \(epochs\) must be (a whole number |a number )?between 1 and 300; got"
    ):
        list(train(GanLab(seed=0), epochs, settings))


def test_gan_through_the_api(client):
    samples, losses, status = client.predict(epochs=2, seed=5, api_name="/train_gan")
    assert samples and losses and status.startswith("Epoch 2:") and "saved" in status
    assert client.predict(t=0.5, api_name="/gan_walk")


def test_each_session_lab_lives_in_the_model_cache(server, client):
    """The GAN lab of an API session is a model like any other: listed in the Models panel, leased while it trains."""
    before = {row[1] for row in client.predict(api_name="/models")[0]["data"] if row[0] == "gan"}
    client.predict(epochs=1, seed=3, api_name="/train_gan")
    rows = [row for row in client.predict(api_name="/models")[0]["data"] if row[0] == "gan"]
    assert {row[1] for row in rows} - before and all(row[1].startswith("GAN lab ") for row in rows)
    assert all(row[5] == "no" for row in rows)  # not in use once the training is done
