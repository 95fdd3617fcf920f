import keras
import numpy as np
import pytest


def test_shapes_and_layer_stack():
    from ae_core.model import build_autoencoder

    autoencoder, encoder, decoder = build_autoencoder(latent_dim=2)
    assert encoder.output_shape == (None, 2)
    assert decoder.input_shape == (None, 2)
    assert autoencoder.output_shape == decoder.output_shape == (None, 28, 28, 1)
    convolutions = [layer for layer in encoder.layers if layer.name.startswith("encoder_conv")]
    assert [layer.strides for layer in convolutions] == [(2, 2), (1, 1), (2, 2), (1, 1)]
    assert all(layer.filters == 8 and layer.kernel_size == (3, 3) for layer in convolutions)
    assert [layer.filters for layer in decoder.layers if hasattr(layer, "filters")] == [64, 32, 1]


@pytest.mark.parametrize("kind", ["ae", "vae", "umap"])
def test_encoder_hidden_and_filters_widen_the_body_every_head_reads(kind):
    from ae_core.config import TrainConfig
    from ae_core.model import build_autoencoder

    latent = "window" if kind == "ae" else "linear"
    _, article, _ = build_autoencoder(2, latent, kind=kind)
    _, wider, _ = build_autoencoder(2, latent, kind=kind, encoder_hidden=16, encoder_filters=12)
    assert "encoder_hidden" not in [layer.name for layer in article.layers]
    assert [layer.filters for layer in wider.layers if layer.name.startswith("encoder_conv")] == [12] * 4
    hidden = wider.get_layer("encoder_hidden")
    assert hidden.units == 16 and hidden.activation.__name__ == "relu"
    assert hidden.kernel.shape == (7 * 7 * 12, 16)  # straight after Flatten
    heads = [layer for layer in wider.layers if layer.name in ("encoder_dense", "encoder_log_var")]
    assert len(heads) == (2 if kind == "vae" else 1) and all(head.kernel.shape == (16, 2) for head in heads)
    with pytest.raises(ValueError, match="encoder_hidden must be 0 .the article's encoder. or a positive"):
        TrainConfig(encoder_hidden=-1)
    with pytest.raises(ValueError, match="encoder_filters must be a positive number of filters such as --encoder-filters 8"):
        TrainConfig(encoder_filters=0)


def test_latent_is_not_relu_and_the_dense_code_takes_both_signs(test_set):
    from ae_core.model import build_encoder

    encoder = build_encoder(latent_dim=2)
    assert encoder.get_layer("encoder_dense").activation.__name__ == "linear"
    import ae_core

    images, _ = test_set
    # The shipped encoder's code before the batch norm (which centres whatever it gets): the
    # article's ReLU made it >= 0. A freshly built encoder's signs would be the random init's.
    trained = ae_core.load_autoencoder(2)._encoder
    dense = keras.Model(trained.input, trained.get_layer("encoder_dense").output)(images[:256]).numpy()
    assert (dense < 0).mean() > 0.2 and (dense > 0).mean() > 0.2


def test_the_decoder_has_the_weights_the_browser_is_sent():
    """65,089 numbers (the README's figure): Dense 2->3136, Conv 64->64, Conv 64->32, Conv 32->1."""
    from ae_core.model import build_decoder

    expected = (2 * 3136 + 3136) + (9 * 64 * 64 + 64) + (9 * 64 * 32 + 32) + (9 * 32 * 1 + 1)
    assert build_decoder(latent_dim=2).count_params() == expected == 65_089


def test_decoder_takes_a_free_code():
    from ae_core.model import build_decoder

    decoder = build_decoder(latent_dim=10)
    images = decoder(np.random.default_rng(0).normal(size=(3, 10)).astype(np.float32)).numpy()
    assert images.shape == (3, 28, 28, 1)
    assert images.min() >= 0 and images.max() <= 1


def test_window_squash_keeps_every_code_inside_and_is_linear_near_zero():
    from ae_core.model import SquashToWindow

    squash = SquashToWindow(5.0, slope=2.5)
    x = np.array([[-1e6, -3.0, -1e-3, 0.0, 1e-3, 3.0, 1e6]], dtype=np.float32)
    z = np.asarray(squash(x))
    assert np.all(np.abs(z) <= 5.0) and np.all(np.diff(z[0]) > 0)
    assert z[0, 3] == 0 and z[0, 4] / 1e-3 == pytest.approx(2.5, rel=1e-3)
    uniform = np.asarray(SquashToWindow(5.0, function="erf")(
        np.random.default_rng(0).normal(size=(20000, 1)).astype(np.float32)))
    # The normal CDF makes a standard normal sample uniform over the window.
    assert np.histogram(uniform, bins=10, range=(-5, 5))[0] == pytest.approx([2000] * 10, rel=0.1)


def test_unknown_latent_kind_is_refused():
    from ae_core.config import TrainConfig
    from ae_core.model import build_encoder

    with pytest.raises(ValueError, match="latent"):
        build_encoder(2, latent="sigmoid")
    with pytest.raises(ValueError, match="latent"):
        TrainConfig(latent="sigmoid")


@pytest.mark.parametrize("latent", ["batchnorm", "normalised", "window"])
def test_only_the_batchnorm_latent_learns_its_centre_and_scale(latent):
    from ae_core.model import build_encoder

    norm = build_encoder(2, latent=latent).get_layer("latent_norm")
    learned = {weight.path.split("/")[-1] for weight in norm.trainable_weights}
    assert learned == ({"gamma", "beta"} if latent == "batchnorm" else set())
