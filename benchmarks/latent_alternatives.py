"""Compare what follows Dense(z) in the encoder, all else equal, on the real MNIST test set.

    python -m benchmarks.latent_alternatives --epochs 6

Each variant trains from the same seed for the same epochs on all 60,000 images; the
table reports test MSE, the share of codes inside [-5, 5]^2, the share in the positive
quadrant (where the article's ReLU puts everything), and the clear cells of the 10x10 grid.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ae_core import Autoencoder, load_mnist
from ae_core.config import TrainConfig
from ae_core.evaluate import grid_clarity, load_classifier, mean_squared_error
from ae_core.explore import fraction_inside
from ae_core.train import train

VARIANTS = {
    "batch-norm + normal CDF (uniform), Adam": dict(latent="uniform"),
    "batch-norm, std 1.5, Adam": dict(latent="normalised", latent_scale=1.5),
    "article: ReLU latent, RMSprop": dict(latent="relu", optimizer="rmsprop"),
    "linear, Adam": dict(latent="linear"),
    "batch-norm, std 2.0, Adam": dict(latent="normalised", latent_scale=2.0),
    "batch-norm, std 1.5, noise 0.5 in training, Adam": dict(latent="normalised", latent_noise=0.5),
    "batch-norm + tanh window, slope 2.0, Adam": dict(latent="window", latent_scale=2.0),
    "batch-norm + tanh window, slope 2.5, Adam": dict(latent="window", latent_scale=2.5),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default="benchmarks/results/latent_alternatives.md")
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only the variants whose name contains one of these words")
    args = parser.parse_args()
    images, _ = load_mnist("test")
    classifier = load_classifier()
    rows = ["| latent | test MSE | in [-5,5]² | in z ≥ 0 quadrant | clear cells | classes | s/epoch |",
            "|---|---|---|---|---|---|---|"]
    for name, settings in VARIANTS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        config = TrainConfig(latent_dim=2, epochs=args.epochs, patience=args.epochs, seed=0, **settings)
        with tempfile.TemporaryDirectory() as folder:
            card = train(config, folder, verbose=2)
            model = Autoencoder.from_folder(folder, latent_dim=2)
        latents = model.encode(images)
        clear, classes = grid_clarity(model, classifier)
        quadrant = float(np.mean(np.all(latents >= 0, axis=1)))
        rows.append(f"| {name} | {mean_squared_error(model, images):.4f} | {fraction_inside(latents):.2%} | "
                    f"{quadrant:.0%} | {clear} | {len(classes)}: {''.join(map(str, classes))} | "
                    f"{card['training_seconds'] / card['epochs_run']:.0f} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as file:  # Appended, so runs of single variants add up.
        file.write(f"\nAfter {args.epochs} epochs each, seed 0, batch 128:\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
