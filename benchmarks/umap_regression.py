"""Can an encoder put unseen images where umap-learn's own UMAP would?

umap-learn's non-parametric UMAP is fitted on the training images' pixels (all 60,000, or
the first ``--images``), with the UMAP-AE's graph settings. An encoder body from
``benchmarks.umap_encoder`` is then trained to regress that embedding (mean squared error,
the embedding standardised), so it is given the codes the UMAP loss reaches on its training
images when every point is free. Every ``--every`` epochs, the 5-NN of its 10,000 test
codes, fitted on its training codes, is scored.

    python -m benchmarks.umap_regression --dataset fashion_mnist [--only 3] [--epochs 30]

It says how well an encoder carries those codes over to unseen images. It is no bound on
what the UMAP loss can teach it: the paper's UMAP-AE scored more than its encoder does here
(docs/model.md). Rows are kept across runs in ``benchmarks/results/umap_regression.md``, one
per dataset, images and encoder; docs/model.md reads them. umap-learn runs in parallel, so a
rerun differs slightly.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np

from ae_core import load_mnist
from ae_core.config import DATASETS, TrainConfig
from ae_core.evaluate import knn_accuracy
from ae_core.model import IMAGE_SHAPE
from benchmarks import keep_sorted_row
from benchmarks.umap_encoder import ENCODERS

OUT = Path(__file__).parent / "results" / "umap_regression.md"
HEADER = ["# An encoder regressed onto umap-learn's own embedding: its test 5-NN", "",
          "`python -m benchmarks.umap_regression --dataset D [--images N] --only I`: umap-learn's UMAP fitted on the "
          "training images' pixels (15 neighbours, min_dist 0.1), the encoder trained to regress that embedding "
          "(standardised; Adam 1e-3, batches of 256, seed 0); 5-NN fitted on the training codes, scored on the "
          "10,000 test codes, every few epochs. The embedding's own figure is umap-learn's `transform` of the test "
          "images (benchmarks/results/umap_ceiling.md). umap-learn runs in parallel, so its fit, and the rows, "
          "differ from run to run by about a point.", "",
          "| dataset | training images | encoder | 5-NN (test) by epoch | best | regression MSE at the end | "
          "seconds | date |",
          "|---|---|---|---|---|---|---|---|"]


def umap_embedding(images: np.ndarray) -> np.ndarray:
    """umap-learn's 2-D embedding of ``images``, centred and divided by its spread."""
    import umap

    recipe = TrainConfig()  # The UMAP-AE's graph settings are the config's defaults.
    reducer = umap.UMAP(n_neighbors=recipe.umap_neighbors, min_dist=recipe.umap_min_dist, n_components=2)
    embedding = reducer.fit_transform(images.reshape(len(images), -1))
    return ((embedding - embedding.mean(axis=0)) / embedding.std()).astype(np.float32)


def regress_and_score(body, train, test, targets: np.ndarray, epochs: int, every: int) -> tuple[dict, float, float]:
    """({epoch: test 5-NN}, the last epoch's regression MSE, seconds) for ``body`` regressed onto ``targets``."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=IMAGE_SHAPE)
    encoder = keras.Model(inputs, body(inputs))
    encoder.compile(keras.optimizers.Adam(1e-3), "mse")
    scores = {}

    def score(epoch, logs):
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            codes = [encoder.predict(images, batch_size=2000, verbose=0) for images in (train[0], test[0])]
            scores[epoch + 1] = knn_accuracy(codes[0], train[1], codes[1], test[1])
            print(f"epoch {epoch + 1}: 5-NN {scores[epoch + 1]:.1%}, MSE {logs['loss']:.4f}", flush=True)

    started = time.perf_counter()
    history = encoder.fit(train[0], targets, batch_size=256, epochs=epochs, verbose=0,
                          callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=score)])
    return scores, history.history["loss"][-1], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.umap_regression", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist", choices=DATASETS)
    parser.add_argument("--images", type=int, default=60_000, help="fit on the first N training images")
    parser.add_argument("--only", nargs="*", type=int, choices=range(len(ENCODERS)), default=[3],
                        help="encoders by index in benchmarks.umap_encoder (default: 3, the shipped body)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=5, help="score the test codes every N epochs")
    arguments = parser.parse_args()
    train = tuple(part[:arguments.images] for part in load_mnist("train", arguments.dataset))
    test = load_mnist("test", arguments.dataset)
    targets = umap_embedding(train[0])
    for index, (name, body) in enumerate(ENCODERS.items()):
        if index not in arguments.only:
            continue
        scores, mse, seconds = regress_and_score(body, train, test, targets, arguments.epochs, arguments.every)
        key = f"| {arguments.dataset} | {len(train[0]):,} | {name} |"
        by_epoch = ", ".join(f"{accuracy:.1%} ({epoch})" for epoch, accuracy in scores.items())
        row = (f"{key} {by_epoch} | {max(scores.values()):.1%} | {mse:.4f} | {seconds:.0f} | "
               f"{time.strftime('%Y-%m-%d')} |")
        keep_sorted_row(OUT, HEADER, key, row)
        print(row, flush=True)


if __name__ == "__main__":
    main()
