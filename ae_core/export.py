"""The decoder as one self-describing block of bytes, for decoding in the browser.

The page's JavaScript (``ui/live/decoder.js``) runs the same arithmetic as Keras on these
arrays: Dense + ReLU, Reshape (7, 7, 64), then three 3x3 'same' convolutions, the last two
reading their input through a 2x nearest-neighbour upsampling. The bytes are ``framing``'s
layout: a JSON header, then every array as float32 little-endian, in Keras's own layout (a
Dense kernel is (in, out) and a Conv2D kernel (height, width, in, out)).

The header names each array's ``offset`` (from the first array) and ``shape``, an ``id``
(the arrays' SHA-256, so a page decodes each model once), and a ``check``: one code and the image Keras decodes from it, which the browser reproduces
before it trusts itself (and falls back to the server when it cannot).

>>> bundle = decoder_bundle(load_autoencoder(2))          # doctest: +SKIP
>>> header = read_header(bundle)                          # doctest: +SKIP
>>> header["latent_dim"], header["arrays"]["dense/kernel"]["shape"], len(bundle)   # doctest: +SKIP
(2, [2, 3136], 264084)
"""

from __future__ import annotations

import hashlib

import numpy as np

from . import framing

FORMAT = 1
# The decoder's layers that hold numbers, in the order the browser applies them.
LAYERS = (("dense", "decoder_dense"), ("conv1", "decoder_conv1"), ("conv2", "decoder_conv2"),
          ("output", "decoder_out"))
CHECK_CODE = (1.25, -0.75)  # Any point off the axes would do; this one draws ink in most models.


def decoder_bundle(model) -> bytes:
    """The decoder of ``model`` (an ``Autoencoder``) as bytes, in the layout above."""
    decoder = model._decoder
    arrays: dict[str, np.ndarray] = {}
    for short, layer_name in LAYERS:
        kernel, bias = decoder.get_layer(layer_name).get_weights()
        arrays[f"{short}/kernel"], arrays[f"{short}/bias"] = kernel, bias
    expected = {"dense/kernel": (model.latent_dim, 7 * 7 * 64), "conv1/kernel": (3, 3, 64, 64),
                "conv2/kernel": (3, 3, 64, 32), "output/kernel": (3, 3, 32, 1)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"The decoder's {name} has shape {arrays[name].shape}, not {shape}: "
                             f"the browser decodes only the article's layer stack.")
    check_code = np.zeros((1, model.latent_dim), dtype=np.float32)
    check_code[0, :2] = CHECK_CODE[: model.latent_dim]
    arrays["check/image"] = model.decode(check_code)[0, ..., 0]

    blobs = [np.ascontiguousarray(array, dtype="<f4").tobytes() for array in arrays.values()]
    header = {"format": FORMAT, "id": hashlib.sha256(b"".join(blobs)).hexdigest()[:16],
              "latent_dim": model.latent_dim, "check": {"code": check_code[0].tolist()}, "arrays": {}}
    offset = 0
    for name, array in arrays.items():
        header["arrays"][name] = {"offset": offset, "shape": list(array.shape)}
        offset += 4 * array.size
    return framing.pack(header, *blobs)


def read_header(bundle: bytes) -> dict:
    """The JSON header of a bundle."""
    return framing.unpack(bundle)[0]


def read_array(bundle: bytes, name: str) -> np.ndarray:
    """One array of a bundle, as the browser reads it."""
    header, start = framing.unpack(bundle)
    spec = header["arrays"][name]
    count = int(np.prod(spec["shape"]))
    return np.frombuffer(bundle, dtype="<f4", count=count, offset=start + spec["offset"]).reshape(spec["shape"])
