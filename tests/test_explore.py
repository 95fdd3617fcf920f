import numpy as np
import pytest

from ae_core import explore


def test_grid_top_row_is_z2_high_and_columns_run_left_to_right():
    z, z1_values, z2_values = explore.latent_grid(size=10, low=-5, high=5)
    assert z.shape == (100, 2)
    assert z[0].tolist() == [-5, 5] and z[9].tolist() == [5, 5] and z[-1].tolist() == [5, -5]
    assert z1_values[0] == -5 and z2_values[0] == 5


@pytest.mark.parametrize("size, low, high", [(0, -5, 5), (51, -5, 5), (10, 3, 3), (10, 5, -5)])
def test_grid_refuses_bad_controls(size, low, high):
    with pytest.raises(ValueError):
        explore.latent_grid(size, low, high)


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
    big = explore.enlarge(image, 3)
    assert big.shape == (6, 6) and big.dtype == np.uint8
    assert big[:3, 3:].min() == 255 and big[3:, :3].max() == 128


def test_marker_lands_where_the_point_is():
    colors = np.array([[255, 0, 0]] * 10, dtype=np.uint8)
    raster = explore.scatter_raster(np.array([[-4.0, 4.0]]), np.array([0]), colors, side=101)
    assert raster[10, 10].tolist() == [255, 0, 0]  # 10 pixels per unit from the (-5, 5) corner.
    marked = explore.mark(raster, (0.0, 0.0))
    assert marked[50, 50].tolist() == [0, 0, 0] and raster[50, 50].tolist() == [255, 255, 255]
