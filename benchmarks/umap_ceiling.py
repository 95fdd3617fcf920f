"""How far can the UMAP loss alone keep the classes apart?

umap-learn's own, non-parametric UMAP on the pixels (no network, no decoder), with the
UMAP-AE's graph settings: fitted on the 60,000 training images (or the first ``--images``),
the test images placed by ``UMAP.transform``; the 5-NN of the 2-D codes, as ``python -m
ae_core.evaluate --kinds`` measures it for the shipped kinds.

    python -m benchmarks.umap_ceiling --dataset fashion_mnist [--images 10000] [--metric cosine]

A UMAP-AE whose 5-NN is well below this figure is short of training or of encoder, not of
what its loss asks for. ``--metric`` is the distance between pixels that the graph follows, as
``--umap-metric`` sets it for the UMAP-AE. Results go to ``benchmarks/results/umap_ceiling.md`` (one row per
dataset, number of images and metric, kept across runs); docs/model.md reads them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ae_core import load_mnist
from ae_core.config import UMAP_METRICS, TrainConfig
from ae_core.datasets import BY_NAME
from ae_core.evaluate import knn_accuracy
from benchmarks import keep_sorted_row

OUT = Path(__file__).parent / "results" / "umap_ceiling.md"
HEADER = ["# Non-parametric UMAP's 5-NN: what the UMAP loss alone gives", "",
          "`python -m benchmarks.umap_ceiling --dataset D [--images N] [--metric M]`: umap-learn fitted on the training "
          "images' pixels (all 60,000, or the first N), the 10,000 test images placed by `transform`; 5-NN "
          "fitted on the training codes, scored on the test codes; the share of the graph's weight on "
          "edges that join two images of one class. umap-learn runs in parallel here, so a rerun "
          "differs slightly.", "",
          "| dataset | training images | metric | graph's weight on same-label edges | 5-NN (test) | n_neighbors "
          "| min_dist | fit | transform | date |",
          "|---|---|---|---|---|---|---|---|---|---|"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.umap_ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(BY_NAME), default="mnist")
    parser.add_argument("--images", type=int, default=60_000, help="fit on the first N training images")
    parser.add_argument("--metric", choices=UMAP_METRICS, default=TrainConfig().umap_metric,
                        help="the distance between training images' pixels that the graph follows")
    arguments = parser.parse_args()
    import umap

    recipe = TrainConfig()  # The UMAP-AE's graph settings are the config's defaults.
    flat = lambda images: images.reshape(len(images), -1)
    train_images, train_labels = (part[:arguments.images] for part in load_mnist("train", arguments.dataset))
    test_images, test_labels = load_mnist("test", arguments.dataset)
    reducer = umap.UMAP(n_neighbors=recipe.umap_neighbors, min_dist=recipe.umap_min_dist, n_components=2,
                        metric=arguments.metric)
    begin = time.perf_counter()
    train_codes = reducer.fit_transform(flat(train_images))
    fitted = time.perf_counter()
    test_codes = reducer.transform(flat(test_images))
    placed = time.perf_counter()
    accuracy = knn_accuracy(train_codes, train_labels, test_codes, test_labels)
    # How often the graph the loss follows joins images of one class, by edge weight.
    graph = reducer.graph_.tocoo()
    same_label = np.average(train_labels[graph.row] == train_labels[graph.col], weights=graph.data)
    key = f"| {arguments.dataset} | {len(train_images):,} | {arguments.metric} |"
    row = (f"{key} {same_label:.1%} | {accuracy:.1%} | {recipe.umap_neighbors} | {recipe.umap_min_dist:g} | "
           f"{fitted - begin:.0f} s | {placed - fitted:.0f} s | {time.strftime('%Y-%m-%d')} |")
    keep_sorted_row(OUT, HEADER, key, row)
    print(row)


if __name__ == "__main__":
    main()
