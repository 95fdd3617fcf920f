"""The figures docs/model.md quotes for the shipped weights, measured on each full test set.

    python -m ae_core.evaluate                                # MNIST's tables
    python -m ae_core.evaluate --dataset fashion_mnist        # Fashion-MNIST's
    python -m ae_core.evaluate --dataset fashion_mnist --train-classifier --classifier-epochs 10
    python -m ae_core.evaluate --kinds                        # only the kinds table

The second table, of kinds, compares the 2-D models of each kind: test MSE, the accuracy of a
5-nearest-neighbour classifier fitted on the training codes and scored on the test codes
(how well the map keeps the classes apart), the share of test codes inside the window,
the clear grid cells and the training time.

A decoded grid cell is "clear" when a small classifier of our own, one per dataset, reads it
with at least 0.9 confidence. Each classifier (MNIST about 99% test accuracy, Fashion-MNIST
about 90%) is trained once, shipped in ``weights/`` with a card and SHA-256 like the
autoencoders, and used only here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .config import MODEL_KINDS, WEIGHTS_DIR, WINDOW, weights_stem
from .data import CLASS_NAMES, load_mnist
from .explore import fraction_inside, latent_grid, reconstruction_errors

CLEAR_CONFIDENCE = 0.9


def classifier_name(dataset: str = "mnist") -> str:
    return f"{dataset}_classifier"


def build_classifier():
    import keras
    from keras import layers

    images = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(images)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    probabilities = layers.Dense(10, activation="softmax")(x)
    return keras.Model(images, probabilities, name="classifier")


def train_classifier(dataset: str = "mnist", out_dir: Path = WEIGHTS_DIR, epochs: int = 3,
                     seed: int = 0) -> dict:
    import keras

    from .cards import sha256_of, write_atomically
    from .data import data_fingerprints

    keras.utils.set_random_seed(seed)
    train_images, train_labels = load_mnist("train", dataset)
    test_images, test_labels = load_mnist("test", dataset)
    classifier = build_classifier()
    classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    classifier.fit(train_images, train_labels, batch_size=128, epochs=epochs, verbose=2)
    _, accuracy = classifier.evaluate(test_images, test_labels, batch_size=1024, verbose=0)
    name = classifier_name(dataset)
    weights_path = Path(out_dir) / f"{name}.weights.h5"
    write_atomically(weights_path, lambda path: classifier.save_weights(str(path)))
    card = {"name": name, "dataset": dataset, "purpose": "evaluation only: judges decoded grid cells",
            "epochs": epochs, "seed": seed, "test_accuracy": round(float(accuracy), 4),
            "data_fingerprints": data_fingerprints(dataset),
            "weights_file": weights_path.name, "sha256": sha256_of(weights_path)}
    write_atomically(Path(out_dir) / f"{name}.json",
                     lambda path: path.write_text(json.dumps(card, indent=2) + "\n"))
    return card


def load_classifier(dataset: str = "mnist", folder: Path = WEIGHTS_DIR):
    from .cards import checked_weights_path, read_model_card

    fix = f"Rebuild it with: python -m ae_core.evaluate --dataset {dataset} --train-classifier"
    path = checked_weights_path(folder, read_model_card(folder, classifier_name(dataset), fix), fix)
    classifier = build_classifier()
    classifier.load_weights(str(path))
    return classifier


def clear_labels(model, classifier, size: int = 10, low: float = WINDOW[0], high: float = WINDOW[1]
                 ) -> np.ndarray:
    """The digit the classifier reads in each of the size^2 decoded grid cells (row by row,
    as ``explore.latent_grid`` lays them out), or -1 where it is less than 90% sure."""
    z, _, _ = latent_grid(size, low, high)
    probabilities = classifier.predict(model.decode(z), verbose=0, batch_size=1024)
    return np.where(probabilities.max(axis=1) >= CLEAR_CONFIDENCE, probabilities.argmax(axis=1), -1)


def grid_clarity(model, classifier, size: int = 10) -> tuple[int, list[int]]:
    """``(clear_cells, classes)``: how many of the size^2 decoded cells the classifier reads
    with confidence >= 0.9, and which digits those clear cells show."""
    labels = clear_labels(model, classifier, size)
    return int(np.sum(labels >= 0)), sorted({int(label) for label in labels[labels >= 0]})


def clear_area(model, classifier, size: int = 100) -> np.ndarray:
    """Share of the [-5, 5]^2 window that decodes to a clear image of each digit, shape (10,).

    The 10x10 grid samples the window at only 100 points, so a digit whose clear region is
    small shows up or not depending on whether a grid point happens to fall in it. A fine
    grid measures the region itself:

    >>> area = clear_area(load_autoencoder(2), load_classifier())   # doctest: +SKIP
    >>> area.sum().round(2), area[8].round(3)                       # doctest: +SKIP
    (0.78, 0.012)
    """
    labels = clear_labels(model, classifier, size)
    return np.bincount(labels[labels >= 0], minlength=10) / labels.size


def mean_squared_error(model, images: np.ndarray) -> float:
    """Mean squared error per pixel over ``images``, as Keras's ``mse`` loss counts it."""
    return float(np.mean(reconstruction_errors(model, images)))


def knn_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                 test_labels: np.ndarray, k: int = 5) -> float:
    """Share of test codes whose k nearest training codes (Euclidean) vote for their label.

    scikit-learn's ``KNeighborsClassifier`` (uniform votes; a tie goes to the smallest label):

    >>> knn_accuracy(np.array([[0.0], [1.0], [10.0]]), np.array([0, 0, 1]),
    ...              np.array([[0.4], [9.0]]), np.array([0, 0]), k=1)
    0.5
    """
    from sklearn.neighbors import KNeighborsClassifier

    classifier = KNeighborsClassifier(n_neighbors=k).fit(np.asarray(train_codes), np.asarray(train_labels))
    return float(classifier.score(np.asarray(test_codes), np.asarray(test_labels)))


def evaluate_kinds(dataset: str = "mnist", kinds: tuple[str, ...] = MODEL_KINDS,
                   folder: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """The 2-D figures of each kind of ``dataset`` in ``folder`` (kinds without weights are left out)."""
    from .inference import Autoencoder

    train_images, train_labels = load_mnist("train", dataset)
    test_images, test_labels = load_mnist("test", dataset)
    classifier = load_classifier(dataset)
    results = {}
    for kind in kinds:
        if not (Path(folder) / f"{weights_stem(2, dataset, kind)}.json").exists():
            continue
        model = Autoencoder.from_folder(folder, 2, dataset, kind)
        test_codes = model.encode(test_images)
        results[kind] = {
            "test_mse": mean_squared_error(model, test_images),
            "knn_5": knn_accuracy(model.encode(train_images), train_labels, test_codes, test_labels),
            "inside_window": fraction_inside(test_codes),
            "clear_cells": grid_clarity(model, classifier)[0],
            "epochs": model.card["epochs_run"],
            # The UMAP kind's graph is part of what it costs to train.
            "training_seconds": model.card["training_seconds"] + model.card.get("umap_graph_seconds", 0.0)}
    return results


def format_kinds_table(results: dict[str, dict], dataset: str = "mnist") -> str:
    lines = ["| kind | test MSE | 5-NN accuracy | latents in [-5,5]² | clear grid cells | epochs | training time |",
             "|---|---|---|---|---|---|---|"]
    for kind, figures in results.items():
        lines.append(f"| {dataset} {kind} | {figures['test_mse']:.4f} | {figures['knn_5']:.1%} | "
                     f"{figures['inside_window']:.1%} | {figures['clear_cells']} / 100 | {figures['epochs']} | "
                     f"{figures['training_seconds']:.0f} s |")
    return "\n".join(lines)


def evaluate_shipped(latent_dims: tuple[int, ...] = (2, 10), dataset: str = "mnist") -> dict[int, dict]:
    """Every figure of the shipped models of ``dataset``, measured on its full test set."""
    from .inference import load_autoencoder

    images, _ = load_mnist("test", dataset)
    results = {}
    for latent_dim in latent_dims:
        model = load_autoencoder(latent_dim, dataset)
        figures = {"test_mse": mean_squared_error(model, images), "epochs": model.card["epochs_run"],
                   "training_seconds": model.card["training_seconds"]}
        if latent_dim == 2:
            figures["inside_window"] = fraction_inside(model.encode(images))
            classifier = load_classifier(dataset)
            figures["clear_cells"], figures["clear_classes"] = grid_clarity(model, classifier)
            figures["clear_area"] = clear_area(model, classifier).tolist()
        results[latent_dim] = figures
    return results


def format_table(results: dict[int, dict], dataset: str = "mnist") -> str:
    lines = ["| model | test MSE | epochs | training time | latents in [-5,5]² | clear grid cells | classes among them |",
             "|---|---|---|---|---|---|---|"]
    names = CLASS_NAMES[dataset]
    separator = "" if dataset == "mnist" else ", "  # Digits read best run together: 012346789.
    for latent_dim, figures in results.items():
        inside = f"{figures['inside_window']:.2%}" if "inside_window" in figures else "–"
        clear = f"{figures['clear_cells']} / 100" if "clear_cells" in figures else "–"
        classes = (f"{len(figures['clear_classes'])}: "
                   f"{separator.join(names[label] for label in figures['clear_classes'])}"
                   if "clear_classes" in figures else "–")
        lines.append(f"| {dataset} {latent_dim}-D | {figures['test_mse']:.4f} | {figures['epochs']} | "
                     f"{figures['training_seconds']:.0f} s | {inside} | {clear} | {classes} |")
    for latent_dim, figures in results.items():
        if "clear_area" in figures:
            shares = ", ".join(f"{names[label]}: {share:.1%}" for label, share in enumerate(figures["clear_area"]))
            lines.append(f"\n{dataset} {latent_dim}-D, share of the window decoded as a clear image "
                         f"(100x100 grid): {sum(figures['clear_area']):.1%} ({shares})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ae_core.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--train-classifier", action="store_true",
                        help="retrain the dataset's evaluation classifier into weights/ first")
    parser.add_argument("--classifier-epochs", type=int, default=3,
                        help="epochs for --train-classifier (the shipped Fashion-MNIST judge had 10)")
    parser.add_argument("--dataset", default="mnist", choices=tuple(CLASS_NAMES))
    parser.add_argument("--kinds", action="store_true",
                        help="print only the table of kinds (the 2-D ae, vae and umap side by side)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR,
                        help="the folder whose kinds the table measures (the classifier is always weights/'s)")
    args = parser.parse_args(argv)
    if args.train_classifier:
        card = train_classifier(args.dataset, epochs=args.classifier_epochs)
        print(f"classifier test accuracy: {card['test_accuracy']:.4f}")
    if not args.kinds:
        print(format_table(evaluate_shipped(dataset=args.dataset), args.dataset) + "\n")
    print(format_kinds_table(evaluate_kinds(args.dataset, folder=args.weights), args.dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
