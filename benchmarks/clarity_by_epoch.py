"""Train one 2-D recipe in full and print, after every epoch, how clear its decoded grid is.

    python -m benchmarks.clarity_by_epoch --latent window --latent-scale 2.0 --seed 2 \\
        --out logs/clarity/w20s2

The table of full-length runs in docs/model.md comes from this script. It takes the very
flags of ``python -m ae_core.train`` (built from ``TrainConfig``, defaults included) and
trains as it does (the same ``train()``, the same callbacks; the extra callback here only
reads the model), so the weights it leaves in ``--out`` are the ones the table describes,
and ``python -m ae_core.train`` with the same flags reproduces them.

Each line shows the epoch, val MSE, the clear cells of the 10x10 grid, the digits among
them, and the clear area on a 100x100 grid, which changes more smoothly than the count.
"""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import keras
import numpy as np

from ae_core import load_mnist
from ae_core.config import TrainConfig
from ae_core.evaluate import clear_area, grid_clarity, load_classifier
from ae_core.explore import fraction_inside


class GridClarityLog(keras.callbacks.Callback):
    """Prints the grid's clarity after each epoch, measured by ``ae_core.evaluate`` itself."""

    def __init__(self, test_images: np.ndarray, dataset: str = "mnist"):
        super().__init__()
        self.test_images = test_images
        self.classifier = load_classifier(dataset)

    def on_epoch_end(self, epoch, logs=None):
        encoder, decoder = self.model.get_layer("encoder"), self.model.get_layer("decoder")
        # The evaluation functions only call .decode; the Keras decoder of this epoch stands in.
        model = SimpleNamespace(decode=lambda z: decoder.predict(z, verbose=0, batch_size=1024))
        clear_cells, classes = grid_clarity(model, self.classifier)
        areas = clear_area(model, self.classifier)
        codes = encoder.predict(self.test_images, verbose=0, batch_size=1024)
        print("CLARITY " + json.dumps({
            "epoch": epoch + 1, "val_mse": round(float(logs["val_loss"]), 5),
            "clear_cells": clear_cells, "classes": "".join(map(str, classes)),
            "clear_area": round(float(areas.sum()), 3), "area_by_digit": areas.round(3).tolist(),
            "inside": fraction_inside(codes)}), flush=True)


def main() -> None:
    from ae_core.train import train

    parser = argparse.ArgumentParser(prog="python -m benchmarks.clarity_by_epoch")
    TrainConfig.add_arguments(parser)  # Every training flag, with the defaults of ae_core.train.
    parser.add_argument("--out", required=True, help="folder for the weights and card")
    args = parser.parse_args()
    config = TrainConfig.from_namespace(args)
    test_images, _ = load_mnist("test", config.dataset)
    train(config, args.out, callbacks=[GridClarityLog(test_images, config.dataset)], verbose=2)


if __name__ == "__main__":
    main()
