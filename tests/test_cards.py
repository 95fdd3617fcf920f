"""Model cards are checked whole: the SHA-256 covers the weights, not the card, so an edited
card must be refused in one sentence before any page shows or uses it."""

from __future__ import annotations

import json
import shutil

import pytest

from ae_core import Autoencoder, WeightsError
from ae_core.cards import card_problem
from conftest import ROOT

STEM = "autoencoder_mnist_z2"
SHIPPED_CARD = json.loads((ROOT / "weights" / f"{STEM}.json").read_text())
MARKDOWN = "[click me](javascript:alert(1)) <img src=x onerror=alert(1)>"

TAMPERED = {
    "best_val_mse": "NaNx",
    "dataset": "evil",
    "latent_dim": 10,
    "optimizer": MARKDOWN,
    "epochs_run": -1,
    "learning_rate": float("inf"),
    "date": "yesterday",
    "history": "none",
    "sha256": "not hex",
    "config": {**SHIPPED_CARD["config"], "latent": "bogus"},
}


@pytest.fixture
def folder(tmp_path):
    shutil.copyfile(ROOT / "weights" / f"{STEM}.weights.h5", tmp_path / f"{STEM}.weights.h5")
    return tmp_path


@pytest.mark.parametrize("field", list(TAMPERED))
def test_each_tampered_field_is_refused_in_one_sentence(folder, field):
    (folder / f"{STEM}.json").write_text(json.dumps({**SHIPPED_CARD, field: TAMPERED[field]}))
    with pytest.raises(WeightsError) as refused:
        Autoencoder.from_folder(folder, latent_dim=2)
    message = str(refused.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"The model card {STEM}.json is not usable: ")
    assert "Retrain them with: python -m ae_core.train --latent-dim 2 --dataset mnist" in message
    # Pages render errors as Markdown, so the card's own text never reaches the message.
    assert MARKDOWN not in message and "javascript" not in message


@pytest.mark.parametrize("field", ["best_val_mse", "dataset", "config", "sha256"])
def test_a_missing_field_is_named(field):
    card = {key: value for key, value in SHIPPED_CARD.items() if key != field}
    assert card_problem(card, STEM) == card_problem(card, STEM) is not None
    assert field in card_problem(card, STEM)


def test_every_shipped_card_passes_and_a_card_for_another_file_does_not():
    for path in sorted((ROOT / "weights").glob("autoencoder_*.json")):
        assert card_problem(json.loads(path.read_text()), path.stem) is None, path.name
    assert "not the file's model autoencoder_mnist_z10" in card_problem(SHIPPED_CARD, "autoencoder_mnist_z10")
    assert "not the file's model vae_mnist_z2" in card_problem({**SHIPPED_CARD, "name": "vae_mnist_z2"}, "vae_mnist_z2")
