import numpy as np


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


def test_latent_is_not_relu_and_can_be_negative(test_set):
    from ae_core.model import build_encoder

    encoder = build_encoder(latent_dim=2)
    assert encoder.get_layer("encoder_dense").activation.__name__ == "linear"
    images, _ = test_set
    z = encoder(images[:256], training=True).numpy()  # Batch statistics, as in training.
    assert (z < 0).any(axis=0).all(), "every latent coordinate must take negative values"
    assert (z > 0).any(axis=0).all()


def test_decoder_takes_a_free_code():
    from ae_core.model import build_decoder

    decoder = build_decoder(latent_dim=10)
    images = decoder(np.random.default_rng(0).normal(size=(3, 10)).astype(np.float32)).numpy()
    assert images.shape == (3, 28, 28, 1)
    assert images.min() >= 0 and images.max() <= 1
