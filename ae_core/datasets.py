"""The datasets the app knows, and the files each is built from: the one table of them.

Everything else reads this table: the training flags' choices (``config.DATASETS``), the
loader's class names and source files (``data``), the pages' words (``ui/state.py``), and the
shell scripts that check ``AE_DATA_DIR`` before anything is installed (``test.sh``,
``deploy/entrypoint.sh``). So it imports only the standard library, and it also runs as a
script with any ``python3``, without the ``ae_core`` package or its virtual environment:

    python3 ae_core/datasets.py missing FOLDER   the first file FOLDER lacks (exit 1), else nothing
    python3 ae_core/datasets.py layout           what a data folder holds, in words for a message

>>> [dataset.name for dataset in TABLE]
['mnist', 'fashion_mnist']
>>> expected_files()[0], layout()
('mnist/train-images-idx3-ubyte.gz', 'mnist/ and fashion_mnist/ with the four original .gz files each')
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dataset:
    name: str  # tensorflow-datasets' name, and the folder of its files under AE_DATA_DIR.
    title: str  # What the sidebar calls it.
    item: str  # One test example, as a page says it ("a digit").
    items: str  # Several of them ("five digits").
    class_names: tuple[str, ...]  # By label, for the legend.
    sketch: str  # What to draw or photograph on the "Your image" page.


TABLE = (
    Dataset("mnist", "MNIST digits", "digit", "digits", tuple(str(digit) for digit in range(10)),
            "a handwritten digit"),
    Dataset("fashion_mnist", "Fashion-MNIST clothes", "image", "images",
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            "a garment, a shoe or a bag"),
)
BY_NAME = {dataset.name: dataset for dataset in TABLE}

# The four files tfds's mnist and fashion_mnist builders read from a manual_dir.
SOURCE_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def expected_files() -> list[str]:
    """Every file a data folder (``AE_DATA_DIR``) holds, relative to it."""
    return [f"{dataset.name}/{file}" for dataset in TABLE for file in SOURCE_FILES]


def missing_files(folder: str | Path) -> list[str]:
    """The expected files that ``folder`` lacks, relative to it."""
    return [name for name in expected_files() if not (Path(folder) / name).is_file()]


def layout() -> str:
    """What a data folder holds, as the end of a sentence that tells how to fix it."""
    folders = [f"{dataset.name}/" for dataset in TABLE]
    listed = folders[0] if len(folders) == 1 else ", ".join(folders[:-1]) + " and " + folders[-1]
    return f"{listed} with the four original .gz files each"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 ae_core/datasets.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    missing = commands.add_parser("missing", help="print the first file FOLDER lacks and exit 1; exit 0 if none")
    missing.add_argument("folder")
    commands.add_parser("layout", help="print what a data folder holds, in words")
    arguments = parser.parse_args(argv)
    if arguments.command == "layout":
        print(layout())
        return 0
    absent = missing_files(arguments.folder)
    if absent:
        print(absent[0])
    return 1 if absent else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
