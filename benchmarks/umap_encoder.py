"""Is the UMAP-AE's 5-NN limited by the article's small encoder? Pure Parametric UMAP (the
UMAP loss alone, no decoder) on a subset of MNIST or Fashion-MNIST, with the article's
encoder and with wider ones, the same steps, edges and seed each; 5-NN of the 10,000 test codes.

    python -m benchmarks.umap_encoder --images 10000 --steps 3000 [--dataset fashion_mnist]

The graph, the edge sampling and the loss are ae_core.kinds' own. Results go to
``benchmarks/results/umap_encoder.md`` (MNIST) or ``umap_encoder_<dataset>.md``;
docs/model.md reads them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ae_core import load_mnist
from ae_core.config import DATASETS
from ae_core.evaluate import knn_accuracy
from ae_core.kinds import fuzzy_graph, umap_ab, umap_cross_entropy
from ae_core.model import IMAGE_SHAPE, _encoder_body

NEGATIVES, MIN_DIST, NEIGHBOURS, LEARNING_RATE = 5, 0.1, 15, 3e-3


def article(images):
    """The shared body as every kind has it: four 8-filter convolutions, then Dense(2)."""
    return layers.Dense(2)(_encoder_body(images))


def article_plus_hidden(images):
    """The same body with one hidden Dense(128, relu) before Dense(2) (``--encoder-hidden 128``)."""
    return layers.Dense(2)(_encoder_body(images, hidden=128))


def sixteen_filters_plus_hidden(images):
    """The shared body with 16 filters per convolution and the hidden Dense(128, relu)."""
    return layers.Dense(2)(_encoder_body(images, hidden=128, filters=16))


def _paper_convolutions(images):
    """Parametric UMAP's MNIST conv body: Conv 64 and 128 (stride 2), then Flatten."""
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(images)
    x = layers.Conv2D(128, 3, strides=2, padding="same", activation="relu")(x)
    return layers.Flatten()(x)


def paper(images):
    """Parametric UMAP's MNIST encoder: its conv body, two Dense(512), Dense(2)."""
    x = _paper_convolutions(images)
    for _ in range(2):
        x = layers.Dense(512, activation="relu")(x)
    return layers.Dense(2)(x)


def paper_convolutions_plus_hidden(images):
    """The paper's conv body with the shipped head, one Dense(128, relu)."""
    return layers.Dense(2)(layers.Dense(128, activation="relu")(_paper_convolutions(images)))


def sixteen_filters_plus_two_hidden(width):
    """The 16-filter body with two hidden Dense(width, relu) layers, the paper's head made narrower."""
    def body(images):
        x = _encoder_body(images, hidden=width, filters=16)
        return layers.Dense(2)(layers.Dense(width, activation="relu")(x))
    return body


ENCODERS = {"article (8 filters, Dense(2))": article,
            "article + Dense(128, relu)": article_plus_hidden,
            "the paper's (64/128 filters, 2 x Dense(512))": paper,
            "16 filters + Dense(128, relu)": sixteen_filters_plus_hidden,
            "16 filters + 2 x Dense(256, relu)": sixteen_filters_plus_two_hidden(256),
            "the paper's convolutions + Dense(128, relu)": paper_convolutions_plus_hidden}


def train_and_score(body, train_images, train_labels, graph, test, steps: int, edges: int, seed: int) -> tuple[float, float]:
    """(5-NN accuracy on the test codes, seconds) after ``steps`` steps of pure UMAP."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=IMAGE_SHAPE)
    encoder = keras.Model(inputs, body(inputs))
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    a, b = umap_ab(MIN_DIST)
    heads, tails = graph.row, graph.col
    weights = graph.data.astype(np.float64)  # Summed in float32, they miss 1 by more than choice allows.
    probabilities = weights / weights.sum()
    rng = np.random.default_rng(seed)

    @tf.function
    def step(head_images, tail_images, negative_order):
        with tf.GradientTape() as tape:
            codes = encoder(tf.concat([head_images, tail_images], axis=0), training=True)
            loss = umap_cross_entropy(codes[:edges], codes[edges:], negative_order, NEGATIVES, a, b)
        optimizer.apply_gradients(zip(tape.gradient(loss, encoder.trainable_weights), encoder.trainable_weights))
        return loss

    started = time.perf_counter()
    for _ in range(steps):
        chosen = rng.choice(len(probabilities), size=edges, p=probabilities)
        step(train_images[heads[chosen]], train_images[tails[chosen]],
             rng.permutation(edges * NEGATIVES).astype(np.int32))
    seconds = time.perf_counter() - started
    train_codes = encoder.predict(train_images, batch_size=1000, verbose=0)
    test_codes = encoder.predict(test[0], batch_size=1000, verbose=0)
    return knn_accuracy(train_codes, train_labels, test_codes, test[1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.umap_encoder", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="training images (the first N)")
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--edges", type=int, default=2_048, help="edges sampled a step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=range(len(ENCODERS)), type=int, help="encoders by index")
    parser.add_argument("--dataset", default="mnist", choices=DATASETS)
    parser.add_argument("--out", help="the results file (default: results/umap_encoder[_<dataset>].md)")
    arguments = parser.parse_args()
    suffix = "" if arguments.dataset == "mnist" else f"_{arguments.dataset}"
    out = Path(arguments.out or Path(__file__).parent / "results" / f"umap_encoder{suffix}.md")
    images, labels = load_mnist("train", arguments.dataset)
    train_images, train_labels = images[:arguments.images], labels[:arguments.images]
    test = load_mnist("test", arguments.dataset)
    graph = fuzzy_graph(train_images, NEIGHBOURS, arguments.seed)
    rows = ["| encoder | parameters | 5-NN (test) | seconds |", "|---|---|---|---|"]
    for index, (name, body) in enumerate(ENCODERS.items()):
        if arguments.only and index not in arguments.only:
            continue
        inputs = keras.Input(shape=IMAGE_SHAPE)
        parameters = keras.Model(inputs, body(inputs)).count_params()
        accuracy, seconds = train_and_score(body, train_images, train_labels, graph, test, arguments.steps, arguments.edges,
                                            arguments.seed)
        rows.append(f"| {name} | {parameters:,} | {accuracy:.1%} | {seconds:.0f} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        f"# Pure Parametric UMAP on {arguments.dataset}: the article's encoder against wider ones", "",
        f"`python -m benchmarks.umap_encoder --images {arguments.images} --steps {arguments.steps} "
        f"--edges {arguments.edges} --seed {arguments.seed} --dataset {arguments.dataset}`, "
        f"{time.strftime('%Y-%m-%d')}; 5-NN fitted on "
        f"the {arguments.images:,} training codes, scored on the 10,000 test codes.", "", *rows, ""])
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
