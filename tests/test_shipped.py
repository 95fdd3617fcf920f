"""The shipped weights meet the figures the README promises, each on its own dataset's test set; a card's figure is measured again on the original files."""

import numpy as np
import pytest

from idx import read_idx_split, source_folder


@pytest.fixture(scope="module")
def shipped(test_set):
    import ae_core

    return ae_core.load_autoencoder(2), ae_core.load_autoencoder(10)


def test_2d_model_fills_the_window(shipped, test_set):
    from ae_core.explore import fraction_inside

    model, _ = shipped
    images, _ = test_set
    latents = model.encode(images)
    assert latents.shape == (10000, 2)
    # The window squash keeps every code inside (-5, 5) by construction; what the training had
    # to achieve is to use the window: no quadrant empty (the article's ReLU left three of
    # them so), a spread close to the slope-2 squash of a unit normal.
    quadrants = [np.mean((np.sign(latents[:, 0]) == x) & (np.sign(latents[:, 1]) == y))
                 for x in (-1, 1) for y in (-1, 1)]
    assert min(quadrants) >= 0.1, quadrants
    assert (latents.std(axis=0) >= 1.5).all(), latents.std(axis=0)
    assert fraction_inside(latents) == 1.0


@pytest.fixture(scope="module")
def classifier():
    from ae_core.evaluate import load_classifier

    return load_classifier("mnist")


@pytest.fixture(scope="module")
def grid_verdict(shipped, classifier):
    from ae_core.evaluate import grid_clarity

    model, _ = shipped
    return grid_clarity(model, classifier)


def test_2d_grid_shows_at_least_eight_classes(grid_verdict):
    _, classes = grid_verdict
    assert len(classes) >= 8, classes


def test_2d_grid_has_eighty_clear_cells(grid_verdict):
    clear, _ = grid_verdict
    assert clear >= 80, clear


def test_fine_grid_measures_the_same_clear_region(shipped, classifier, grid_verdict):
    """The 100x100 clear area and the 10x10 verdict sample one region of the plane, so they
    must agree: at 10x10 exactly, and at 100x100 within the 10x10 grid's sampling error."""
    from ae_core.evaluate import clear_area

    model, _ = shipped
    clear_cells, classes = grid_verdict
    coarse = clear_area(model, classifier, size=10)
    assert coarse.sum() == pytest.approx(clear_cells / 100)
    assert sorted(np.flatnonzero(coarse)) == classes
    fine = clear_area(model, classifier)
    assert abs(fine.sum() - clear_cells / 100) <= 0.1, (fine.sum(), clear_cells)
    assert all(fine[digit] > 0 for digit in classes), fine


def test_classifier_is_a_fair_judge(classifier, test_set):
    images, labels = test_set
    predictions = classifier.predict(images, verbose=0).argmax(axis=1)
    assert np.mean(predictions == labels) >= 0.98


def test_encode_decode_any_batch_size(shipped, test_set):
    model, _ = shipped
    images, _ = test_set
    for count in (1, 7, 4097):
        assert model.encode(images[:count]).shape == (count, 2)
    z = np.random.default_rng(0).uniform(-5, 5, size=(1500, 2))
    decoded = model.decode(z)
    assert decoded.shape == (1500, 28, 28, 1) and 0 <= decoded.min() and decoded.max() <= 1
    # Chunking must not change results: one at a time equals all at once.
    assert np.allclose(model.decode(z[700:701]), decoded[700:701], atol=1e-6)
    with pytest.raises(ValueError):
        model.decode(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        model.encode(np.zeros((2, 32, 32, 1)))


# Each shipped model's bar on its own dataset's test set: (dataset, latent_dim) -> test MSE at most.
BARS = {("mnist", 2): 0.041, ("mnist", 10): 0.012, ("fashion_mnist", 2): 0.031, ("fashion_mnist", 10): 0.0125}


@pytest.mark.parametrize("dataset, latent_dim", sorted(BARS))
def test_every_card_reproduces_from_the_original_files_and_meets_its_bar(dataset, latent_dim):
    """The card's MSE, measured again on the t10k files read with numpy alone (not tfds)."""
    import ae_core
    from ae_core.data import data_fingerprints

    original_images, _ = read_idx_split(source_folder(dataset), "test")
    images = original_images.astype(np.float32)[..., np.newaxis] / 255.0
    model = ae_core.load_autoencoder(latent_dim, dataset)
    mse = float(np.mean((model.reconstruct(images) - images) ** 2))
    assert mse == pytest.approx(model.card["best_val_mse"], rel=1e-4)
    assert mse <= BARS[(dataset, latent_dim)]
    assert model.card["dataset"] == dataset and model.card["train_images"] == 60_000
    assert model.card["data_fingerprints"] == data_fingerprints(dataset)
    # Clearly better than drawing the average image of these files; a model of the other
    # dataset does worse than that (0.133 against 0.087 on Fashion-MNIST's t10k files).
    assert mse < 0.75 * float(np.mean((images - images.mean(axis=0)) ** 2))


def test_fashion_mnist_2d_fills_the_window_and_recorded_its_formation():
    import ae_core
    from ae_core.explore import fraction_inside

    images, labels = ae_core.load_mnist("test", "fashion_mnist")
    model = ae_core.load_autoencoder(2, "fashion_mnist")
    latents = model.encode(images)
    quadrants = [np.mean((np.sign(latents[:, 0]) == x) & (np.sign(latents[:, 1]) == y))
                 for x in (-1, 1) for y in (-1, 1)]
    assert min(quadrants) >= 0.1 and (latents.std(axis=0) >= 1.5).all(), (quadrants, latents.std(axis=0))
    formation = ae_core.inference.load_formation("fashion_mnist")
    assert formation["codes"].shape == (model.card["epochs_run"], 1000, 2)
    assert np.array_equal(formation["labels"], labels[:1000])
    # The shipped weights are the best epoch's, so that epoch's record is where they put the
    # images; the last epoch's, a worse one, is not.
    best = int(np.argmin(formation["val_loss"]))
    assert np.allclose(formation["codes"][best], model.encode(images[:1000]), atol=1e-4)
    assert best == len(formation["val_loss"]) - 1 or not np.allclose(formation["codes"][-1], latents[:1000], atol=1e-4)


def test_the_fashion_classifier_is_a_fair_judge_of_clothes():
    """The judge of clear cells on Fashion-MNIST, checked on the original files' labels."""
    from ae_core.evaluate import load_classifier

    original_images, original_labels = read_idx_split(source_folder("fashion_mnist"), "test")
    images = original_images.astype(np.float32)[..., np.newaxis] / 255.0
    predictions = load_classifier("fashion_mnist").predict(images, verbose=0).argmax(axis=1)
    assert np.mean(predictions == original_labels) >= 0.88


def test_the_fashion_grid_has_the_clear_cells_the_docs_state():
    """The figures python -m ae_core.evaluate --dataset fashion_mnist prints, and the docs quote."""
    import ae_core
    from ae_core.evaluate import grid_clarity, load_classifier

    clear, classes = grid_clarity(ae_core.load_autoencoder(2, "fashion_mnist"), load_classifier("fashion_mnist"))
    assert (clear, [ae_core.CLASS_NAMES["fashion_mnist"][label] for label in classes]) == (
        44, ["Trouser", "Dress", "Sneaker", "Bag", "Ankle boot"])
