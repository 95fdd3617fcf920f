import numpy as np
import pytest

from ae_core import explore
from ui import images as pictures


def test_grid_top_row_is_z2_high_and_columns_run_left_to_right():
    z, z1_values, z2_values = explore.latent_grid(size=10, low=-5, high=5)
    assert z.shape == (100, 2)
    assert z[0].tolist() == [-5, 5] and z[9].tolist() == [5, 5] and z[-1].tolist() == [5, -5]
    assert z1_values[0] == -5 and z2_values[0] == 5


@pytest.mark.parametrize("size, low, high", [(0, -5, 5), (10, 3, 3), (10, 5, -5)])
def test_grid_refuses_bad_controls(size, low, high):
    with pytest.raises(ValueError):
        explore.latent_grid(size, low, high)


def test_grid_image_refuses_a_size_too_large_to_draw():
    # Refused before any decoding, so no model is needed.
    with pytest.raises(ValueError, match="between 1 and 50"):
        explore.decode_grid(None, size=51)


def test_tile_places_images_row_by_row():
    images = np.stack([np.full((28, 28), i / 10, dtype=np.float32) for i in range(5)])
    canvas = explore.tile(images, columns=3)
    assert canvas.shape == (56, 84)
    assert canvas[0, 28] == pytest.approx(0.1) and canvas[28, 28] == pytest.approx(0.4)
    assert canvas[28, 56] == 0  # The empty sixth cell.


def test_nearest_orders_by_distance():
    latents = np.array([[0, 0], [3, 0], [1, 0], [-2, 0]], dtype=np.float32)
    assert explore.nearest(np.array([0.9, 0]), latents, count=3).tolist() == [2, 0, 1]


def test_fraction_inside_and_latent_table():
    latents = np.array([[0, 0], [4.9, -4.9], [5.1, 0], [0, -6]], dtype=np.float32)
    assert explore.fraction_inside(latents) == 0.5
    table = explore.latent_table(latents, np.array([1, 2, 3, 4]))
    assert list(table.columns) == ["index", "label", "z1", "z2"] and table["index"].tolist() == [0, 1, 2, 3]


def test_enlarge_keeps_square_pixels():
    image = np.array([[0.0, 1.0], [0.5, 0.0]], dtype=np.float32)
    big = pictures.enlarge(image, 3)
    assert big.shape == (6, 6) and big.dtype == np.uint8
    assert big[:3, 3:].min() == 255 and big[3:, :3].max() == 128


def test_marker_lands_where_the_point_is():
    colors = np.array([[255, 0, 0]] * 10, dtype=np.uint8)
    raster = pictures.scatter_raster(np.array([[-4.0, 4.0]]), np.array([0]), colors, side=101)
    assert raster[10, 10].tolist() == [255, 0, 0]  # 10 pixels per unit from the (-5, 5) corner.
    marked = pictures.mark(raster, (0.0, 0.0))
    assert marked[50, 50].tolist() == [0, 0, 0] and raster[50, 50].tolist() == [255, 255, 255]


@pytest.fixture(scope="module")
def shipped():
    import ae_core

    return ae_core.load_autoencoder(2)


def test_reconstruction_errors_average_to_the_test_mse(shipped, test_set):
    images, _ = test_set
    sample = images[:500]
    errors = explore.reconstruction_errors(shipped, sample)
    assert errors.shape == (500,) and np.all(errors >= 0)
    by_hand = [float(np.mean((shipped.reconstruct(sample[i:i + 1])[0] - sample[i]) ** 2)) for i in (0, 7, 499)]
    assert errors[[0, 7, 499]] == pytest.approx(by_hand, rel=1e-4)
    assert float(errors.mean()) == pytest.approx(float(np.mean((shipped.reconstruct(sample) - sample) ** 2)), rel=1e-5)


def test_worst_orders_largest_first():
    errors = np.array([0.02, 0.30, 0.01, 0.30, 0.15])
    assert explore.worst(errors, count=3).tolist() == [1, 3, 4]


def test_segment_runs_straight_from_start_to_end():
    codes = explore.segment(np.array([-4.0, 1.0]), np.array([2.0, -3.0]), steps=4)
    assert codes.shape == (4, 2)
    assert codes[0].tolist() == [-4.0, 1.0] and codes[-1].tolist() == [2.0, -3.0]
    assert np.allclose(np.diff(codes, axis=0), [[2.0, -4 / 3]] * 3)


@pytest.mark.parametrize("start, end, steps", [([0, 0], [1, 1], 1), ([0, 0], [1, 1], 101), ([0, 0], [1, 1, 1], 5)])
def test_segment_refuses_bad_requests(start, end, steps):
    with pytest.raises(ValueError):
        explore.segment(np.array(start, dtype=float), np.array(end, dtype=float), steps)


def test_decoded_path_starts_and_ends_at_the_decoded_ends(shipped):
    start, end = np.array([-3.0, 2.0]), np.array([3.5, -1.0])
    strip, codes = explore.decode_path(shipped, start, end, steps=6)
    assert strip.shape == (28, 6 * 28)
    ends = shipped.decode(np.stack([start, end]))[..., 0]
    assert np.allclose(strip[:, :28], ends[0], atol=1e-5) and np.allclose(strip[:, -28:], ends[1], atol=1e-5)


def test_reencoding_drift_is_the_distance_moved_by_decode_then_encode(shipped):
    drift, z1_values, z2_values = explore.reencoding_drift(shipped, size=8)
    assert drift.shape == (8, 8) and np.all(drift >= 0)
    z = np.array([[z1_values[2], z2_values[5]]])  # Row 5, column 2 of the grid.
    moved = float(np.linalg.norm(shipped.encode(shipped.decode(z)) - z))
    assert drift[5, 2] == pytest.approx(moved, rel=1e-4, abs=1e-5)
    assert drift.max() > drift.min()  # The decoder is not equally faithful everywhere.


def test_to_png_round_trips_the_pixels():
    import io

    from PIL import Image

    image = np.linspace(0, 1, 28 * 56, dtype=np.float32).reshape(28, 56)
    decoded = np.asarray(Image.open(io.BytesIO(pictures.to_png(image))))
    assert decoded.shape == (28, 56) and np.array_equal(decoded, pictures.enlarge(image, 1))
