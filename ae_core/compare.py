"""The figures the Compare page shows under its two maps, one set per model, kept on disk.

The 5-NN accuracy needs the codes of the 60,000 training images, and the grid's clarity the
evaluation classifier, so each model's figures are computed once and kept as
``<cache>/derived/<key>/metrics-<train split fingerprint>.json`` beside its map data
(``ae_core.store``): new weights, another test split or another training split never read
an old entry, and a restart reads it without TensorFlow.

    >>> figures = model_figures("mnist", "shipped", "vae")   # doctest: +SKIP
    >>> sorted(figures)                                       # doctest: +SKIP
    ['clear_cells', 'inside_window', 'knn_5', 'test_mse', 'training_seconds']
"""

from __future__ import annotations

import json

import numpy as np

from .cards import write_atomically
from .config import SHIPPED, TrainConfig
from .data import FINGERPRINTS
from .store import cache_dir, checked_card, derived_key, import_tensorflow, map_data

FIGURES = ("test_mse", "knn_5", "inside_window", "clear_cells", "training_seconds")


def model_figures(dataset: str, name: str = SHIPPED, kind: str = "ae") -> dict[str, float]:
    """Test MSE, 5-NN accuracy of the 2-D codes (fitted on the training codes, scored on the
    test codes), share of test codes inside [-5, 5]², clear cells of the 10x10 decoded grid
    and training seconds (from the card) of the 2-D model ``name`` of ``kind``."""
    card = checked_card(2, dataset, name, kind)
    path = (cache_dir() / "derived" / derived_key(dataset, card)
            / f"metrics-{FINGERPRINTS[(dataset, 'train')][:16]}.json")
    try:
        stored = json.loads(path.read_text())
        if all(isinstance(stored.get(key), (int, float)) for key in FIGURES):
            return {key: stored[key] for key in FIGURES}
    except (OSError, ValueError):
        pass
    figures = _compute(dataset, name, kind, card)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: temporary.write_text(json.dumps(figures)))
    return figures


def encoder_width(dataset: str, name: str = SHIPPED, kind: str = "ae") -> str:
    """What the 2-D model's encoder body is, from its card: the kinds are compared fairly only
    when these agree (the shipped 2-D models all have 16 filters; a model trained on the Train
    page may not)."""
    recipe = TrainConfig.from_dict(checked_card(2, dataset, name, kind)["config"])
    hidden = f", then Dense({recipe.encoder_hidden})" if recipe.encoder_hidden else ""
    return f"{recipe.encoder_filters} filters per convolution{hidden}"


def _compute(dataset: str, name: str, kind: str, card: dict) -> dict[str, float]:
    from .data import load_mnist
    from .evaluate import grid_clarity, knn_accuracy, load_classifier
    from .explore import fraction_inside
    from .inference import load_autoencoder

    import_tensorflow()
    test = map_data(dataset, name, kind)  # The test codes and errors, kept already.
    model = load_autoencoder(2, dataset, name, kind)
    train_images, train_labels = load_mnist("train", dataset)
    return {
        "test_mse": float(np.mean(test.errors)),
        "knn_5": knn_accuracy(model.encode(train_images), train_labels, test.latents, test.labels, k=5),
        "inside_window": fraction_inside(test.latents),
        "clear_cells": grid_clarity(model, load_classifier(dataset))[0],
        # The UMAP kind's graph is part of what it costs to train (as ae_core/evaluate.py counts).
        "training_seconds": float(card.get("training_seconds", 0.0)) + float(card.get("umap_graph_seconds", 0.0)),
    }
