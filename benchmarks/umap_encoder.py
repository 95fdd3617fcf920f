"""What holds pure Parametric UMAP's 5-NN below umap-learn's own?

The UMAP loss alone (no decoder) on a subset of MNIST or Fashion-MNIST, with the shipped
UMAP-AE's settings (its card's) unless a flag changes one: the encoder, the graph's
neighbours and min_dist, the negatives and where they come from, the learning rate's
schedule, how the edges are drawn and whether gradients are clipped. Every row takes the
same images, steps and seed; its figure is the 5-NN of the 10,000 test codes.

    python -m benchmarks.umap_encoder --images 10000 --steps 3000 [--dataset fashion_mnist] [--only 3]
    python -m benchmarks.umap_encoder --dataset fashion_mnist --only 3 --min-dist 0   (one setting changed)

The graph, the edge sampling (but for ``--edge-draws repeats``) and the loss are
ae_core.kinds' own. Rows are kept across runs in ``benchmarks/results/umap_encoder.md``
(MNIST) or ``umap_encoder_<dataset>.md``, one per encoder and change; docs/model.md reads them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ae_core import load_mnist
from ae_core.config import DATASETS, TrainConfig
from ae_core.evaluate import knn_accuracy
from ae_core.kinds import fuzzy_graph, umap_ab, umap_cross_entropy
from ae_core.model import IMAGE_SHAPE, _encoder_body
from ae_core.store import checked_card


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


@dataclass(frozen=True)
class Settings:
    """What a row trains with. ``shipped`` reads the defaults from the shipped UMAP-AE's card."""
    neighbours: int
    min_dist: float
    negatives: int
    edges: int
    learning_rate: float
    schedule: str = "constant"  # or "linear": falling to 0 at the last step, as umap-learn's optimiser's
    negatives_from: str = "tails"  # or "uniform": any training image, as umap-learn's optimiser draws them
    edge_draws: str = "weight"  # or "repeats": each edge max(1, 25 w / w_max) times an epoch, as the paper's tfumap
    clip: float = 0.0  # > 0: each gradient element clipped to [-clip, clip], as the paper's tfumap (4)

    @classmethod
    def shipped(cls, dataset: str) -> "Settings":
        recipe = TrainConfig(**checked_card(2, dataset, kind="umap")["config"])
        return cls(recipe.umap_neighbors, recipe.umap_min_dist, recipe.umap_negatives, recipe.umap_edges,
                   recipe.learning_rate)

    def changes(self, shipped: "Settings") -> list[str]:
        """The settings that differ from ``shipped``, as the flags spell them."""
        return [f"--{name.replace('_', '-')} {format(value, 'g') if isinstance(value, float) else value}"
                for name, value in vars(self).items() if value != getattr(shipped, name)]


def weighted_draws(weights: np.ndarray, edges: int, rng: np.random.Generator):
    """Each step, ``edges`` edges drawn with probability in proportion to their weight, as
    ae_core.kinds.UmapEdgeData draws them."""
    probabilities = weights / weights.sum()
    while True:
        yield rng.choice(len(weights), size=edges, p=probabilities)


def repeated_draws(weights: np.ndarray, edges: int, rng: np.random.Generator, most: int = 25):
    """The paper's (tfumap's ``create_edge_iterator``): each epoch, every edge max(1, ⌊most·w/w_max⌋)
    times, shuffled and cut into steps of ``edges``; the weakest edges come oftener than by weight."""
    repeats = np.clip((weights / weights.max() * most).astype(int), 1, most)
    expanded = np.repeat(np.arange(len(weights)), repeats)
    while True:
        order = rng.permutation(expanded)
        for start in range(0, len(order) - edges + 1, edges):
            yield order[start:start + edges]


def train_and_score(body, train_images, train_labels, graph, test, settings: Settings, steps: int,
                    seed: int) -> tuple[float, float]:
    """(5-NN accuracy on the test codes, seconds) after ``steps`` steps of pure UMAP."""
    edges = settings.edges
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=IMAGE_SHAPE)
    encoder = keras.Model(inputs, body(inputs))
    rate = (settings.learning_rate if settings.schedule == "constant" else
            keras.optimizers.schedules.PolynomialDecay(settings.learning_rate, steps, end_learning_rate=0.0))
    optimizer = keras.optimizers.Adam(rate)
    a, b = umap_ab(settings.min_dist)
    heads, tails = graph.row, graph.col
    weights = graph.data.astype(np.float64)  # Summed in float32, they miss 1 by more than choice allows.
    rng = np.random.default_rng(seed)
    draws = (repeated_draws if settings.edge_draws == "repeats" else weighted_draws)(weights, edges, rng)
    uniform = settings.negatives_from == "uniform"

    @tf.function
    def step(head_images, tail_images, negative_images, negative_order):
        with tf.GradientTape() as tape:
            codes = encoder(tf.concat([head_images, tail_images, negative_images], axis=0), training=True)
            loss = umap_cross_entropy(codes[:edges], codes[edges:2 * edges], negative_order, settings.negatives, a, b,
                                      negative_tails=codes[2 * edges:] if uniform else None)
        gradients = tape.gradient(loss, encoder.trainable_weights)
        if settings.clip:
            gradients = [tf.clip_by_value(gradient, -settings.clip, settings.clip) for gradient in gradients]
        optimizer.apply_gradients(zip(gradients, encoder.trainable_weights))
        return loss

    started = time.perf_counter()
    for _ in range(steps):
        chosen = next(draws)
        order = rng.permutation(edges * settings.negatives).astype(np.int32)
        negative_images = train_images[rng.integers(0, len(train_images), edges) if uniform else []]
        step(train_images[heads[chosen]], train_images[tails[chosen]], negative_images, order)
    seconds = time.perf_counter() - started
    train_codes = encoder.predict(train_images, batch_size=1000, verbose=0)
    test_codes = encoder.predict(test[0], batch_size=1000, verbose=0)
    return knn_accuracy(train_codes, train_labels, test_codes, test[1]), seconds


SIZES = {"images": 10_000, "steps": 3_000, "seed": 0}  # Every kept row's, unless it says.
COLUMNS = ["| encoder | changed (flags) | parameters | 5-NN (test) | seconds | date |", "|---|---|---|---|---|---|"]


def results_file(dataset: str) -> Path:
    return Path(__file__).parent / "results" / f"umap_encoder{'' if dataset == 'mnist' else '_' + dataset}.md"


def keep_row(out: Path, dataset: str, shipped: Settings, row: str) -> None:
    """Add ``row`` to ``out``, in place of an earlier row of the same encoder and changes."""
    key = row.split(" | ")[:2]
    kept = [line for line in out.read_text().splitlines()
            if line.startswith("| ") and line != COLUMNS[0] and line.split(" | ")[:2] != key] if out.exists() else []
    header = [f"# Pure Parametric UMAP on {dataset}: what holds its 5-NN back", "",
              f"`python -m benchmarks.umap_encoder --dataset {dataset} --only I [flags]`: the first "
              f"{SIZES['images']:,} training images, {SIZES['steps']:,} steps, seed {SIZES['seed']}, and the "
              f"shipped UMAP-AE's settings ({shipped.neighbours} neighbours, min_dist {shipped.min_dist:g}, "
              f"{shipped.negatives} negatives from the tails of {shipped.edges:,} edges a step, Adam at a constant "
              f"{shipped.learning_rate:g}), but for the flags a row names; 5-NN fitted on the training codes, scored "
              "on the 10,000 test codes. Seconds are the training's, on a machine that may have been busy.", ""]
    out.write_text("\n".join([*header, *COLUMNS, *kept, row]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.umap_encoder", description=__doc__.splitlines()[0])
    for name, value in SIZES.items():
        parser.add_argument(f"--{name}", type=int, default=value)
    parser.add_argument("--only", nargs="*", choices=range(len(ENCODERS)), type=int, help="encoders by index")
    parser.add_argument("--dataset", default="mnist", choices=DATASETS)
    parser.add_argument("--neighbours", type=int, help="the graph's neighbours (default: the shipped card's)")
    parser.add_argument("--min-dist", type=float, help="UMAP's min_dist (default: the shipped card's)")
    parser.add_argument("--negatives", type=int, help="negative pairs per edge (default: the shipped card's)")
    parser.add_argument("--edges", type=int, help="edges sampled a step (default: the shipped card's)")
    parser.add_argument("--learning-rate", type=float, help="Adam's rate (default: the shipped card's)")
    parser.add_argument("--schedule", choices=("constant", "linear"), default="constant",
                        help="the rate throughout, or falling linearly to 0 (umap-learn's optimiser)")
    parser.add_argument("--negatives-from", choices=("tails", "uniform"), default="tails",
                        help="the sampled edges' tails (Parametric UMAP), or any training image (umap-learn)")
    parser.add_argument("--edge-draws", choices=("weight", "repeats"), default="weight",
                        help="edges drawn by weight each step (ae_core), or each edge max(1, 25 w / w_max) times "
                             "an epoch (the paper's tfumap)")
    parser.add_argument("--clip", type=float, default=0.0,
                        help="clip each gradient element to [-C, C] (the paper's: 4)")
    arguments = parser.parse_args()
    shipped = Settings.shipped(arguments.dataset)
    settings = replace(shipped, schedule=arguments.schedule, negatives_from=arguments.negatives_from,
                       edge_draws=arguments.edge_draws, clip=arguments.clip, **{
        name: getattr(arguments, name) for name in ("neighbours", "min_dist", "negatives", "edges", "learning_rate")
        if getattr(arguments, name) is not None})
    sizes = [f"--{name} {getattr(arguments, name)}" for name, value in SIZES.items() if getattr(arguments, name) != value]
    changes = " ".join(settings.changes(shipped) + sizes) or "none"
    images, labels = load_mnist("train", arguments.dataset)
    train_images, train_labels = images[:arguments.images], labels[:arguments.images]
    test = load_mnist("test", arguments.dataset)
    graph = fuzzy_graph(train_images, settings.neighbours, arguments.seed)  # Once: every encoder's the same.
    out = results_file(arguments.dataset)
    for index, (name, body) in enumerate(ENCODERS.items()):
        if arguments.only and index not in arguments.only:
            continue
        inputs = keras.Input(shape=IMAGE_SHAPE)
        parameters = keras.Model(inputs, body(inputs)).count_params()
        accuracy, seconds = train_and_score(body, train_images, train_labels, graph, test, settings, arguments.steps,
                                            arguments.seed)
        row = f"| {name} | {changes} | {parameters:,} | {accuracy:.1%} | {seconds:.0f} | {time.strftime('%Y-%m-%d')} |"
        keep_row(out, arguments.dataset, shipped, row)
        print(row, flush=True)


if __name__ == "__main__":
    main()
