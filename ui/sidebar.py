"""The sidebar on every page: what an autoencoder is, the model card, reconstructions."""

from __future__ import annotations

import streamlit as st

import ae_core
from ae_core.explore import enlarge

from . import state

ABOUT = (
    "An autoencoder is a neural network trained to copy its input through a narrow middle. "
    "The encoder squeezes each 28x28 digit into a short code z, and the decoder redraws the digit "
    "from that code alone. With only two numbers in z, every digit becomes a point on a plane "
    "that you can see, click and walk across."
)


def render() -> None:
    with st.sidebar:
        st.markdown("### What is this?")
        st.caption(ABOUT)
        try:
            card = state.model(2).card
        except ae_core.WeightsError as error:
            st.error(str(error))
            return
        st.markdown("### Model in use")
        st.markdown(
            f"**{card['latent_dim']}-D latent**, {card['dataset'].upper().replace('_', '-')}  \n"
            f"test MSE **{card['best_val_mse']:.4f}** after {card['epochs_run']} epochs  \n"
            f"{card['optimizer']} lr {card['learning_rate']:g}, batch {card['batch_size']}  \n"
            f"trained {card['date'][:10]}")
        try:
            strip = state.reconstruction_strip()
        except (ae_core.DataUnavailableError, ae_core.WeightsError) as error:
            st.caption(f"Reconstructions unavailable: {error}")
            return
        st.image(enlarge(strip, 2), caption="top: test digits · middle: 2-D · bottom: 10-D reconstruction", output_format="PNG")
