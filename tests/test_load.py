"""Many users at once share one model: calls from many threads give what serial calls give.
Many browser sessions at once, each checking its own pixels, are tests/test_deploy.py's."""

from __future__ import annotations

import threading

import numpy as np


def test_model_calls_from_many_threads_match_serial_calls():
    import ae_core

    model = ae_core.load_autoencoder(2)
    codes = np.random.default_rng(0).uniform(-5, 5, size=(64, 1, 2)).astype(np.float32)
    expected = [model.decode(code) for code in codes]
    results = [None] * len(codes)

    def work(index: int) -> None:
        for _ in range(5):
            results[index] = model.decode(codes[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(np.array_equal(result, want) for result, want in zip(results, expected))
