"""The sidebar on every page: the dataset and model, what an autoencoder is, the model card."""

from __future__ import annotations

import streamlit as st

import ae_core
from ae_core.jobs import leftovers

from . import state
from .images import enlarge

ABOUT = (
    "An autoencoder is a neural network trained to copy its input through a narrow middle. "
    "The encoder squeezes each 28x28 image into a short code z, and the decoder redraws the image "
    "from that code alone. With only two numbers in z, every image becomes a point on a plane "
    "that you can see, click and walk across."
)


def choose_model() -> None:
    """The dataset and the 2-D model every page uses; both are kept in the URL."""
    # Options are shown as they appear in the URL (?dataset=fashion_mnist&model=shipped):
    # with a format_func, Streamlit would put the formatted label in the URL instead.
    dataset = st.selectbox("Dataset", list(state.DATASETS), key="dataset", bind="query-params",
                           help=". ".join(f"{name}: {title}" for name, title in state.DATASETS.items()))
    leftovers()  # Moves runs that finished on any replica into place, so they are listed here.
    names = ae_core.available_models(dataset)
    if not names:
        st.warning(f"No {state.DATASETS[dataset]} model yet. Train one on the Train page.")
        return
    name = st.selectbox("Model", names, key="model", bind="query-params",
                        help="shipped: the trained weights in weights/. The others were trained on the "
                             "Train page.")
    choose_kind(dataset, name)


# What each kind is called on the page; the URL keeps the short name (?kind=vae).
KIND_LABELS = {"ae": "plain autoencoder", "vae": "variational (VAE)",
               "umap": "neighbourhood-preserving (UMAP loss)"}


def choose_kind(dataset: str, name: str) -> None:
    """Which kind of 2-D model: only the kinds whose weights exist for this dataset and model,
    and one line with the command that trains each missing one."""
    kinds = ae_core.available_kinds(dataset, name)
    if not kinds:
        return
    if st.session_state.get("kind") not in kinds:
        st.session_state["kind"] = kinds[0]  # A kind the other dataset or model had.
    # Captions, not a format_func: Streamlit would put a formatted label in the URL.
    st.radio("Kind", list(kinds), key="kind", bind="query-params",
             captions=[KIND_LABELS[kind] for kind in kinds],
             help="All kinds share the encoder's body and the decoder; they differ in the loss "
                  "that places the codes. See docs/model.md.")
    if name == ae_core.config.SHIPPED:
        for kind in ae_core.config.MODEL_KINDS:
            if kind not in kinds:
                st.caption(f"No shipped {KIND_LABELS[kind]} for {state.DATASETS[dataset]} yet: "
                           f"train it with `{ae_core.inference.kind_command(dataset, kind)}`.")


def render() -> None:
    with st.sidebar:
        choose_model()
        st.markdown("### What is this?")
        st.caption(ABOUT)
        choice = state.current()
        try:
            card = state.model(choice).card
        except ae_core.WeightsError as error:
            st.error(str(error))
            return
        st.markdown("### Model in use")
        st.markdown(
            f"**{card['latent_dim']}-D latent**, {state.DATASETS[card['dataset']]}  \n"
            f"test MSE **{card['best_val_mse']:.4f}** after {card['epochs_run']} "
            f"epoch{'s' if card['epochs_run'] != 1 else ''}  \n"
            f"{card['optimizer']} lr {card['learning_rate']:g}, batch {card['batch_size']}  \n"
            f"{card['train_images']:,} training images, trained {card['date'][:10]}  \n"
            f"{KIND_LABELS.get(choice.kind, choice.kind)}, "
            f"{'shipped weights' if choice.name == 'shipped' else 'model ' + choice.name}")
        problem = ae_core.data_mismatch(card, choice.dataset)
        if problem:
            st.warning(problem)
        try:
            strip = state.reconstruction_strip(choice)
        except (ae_core.DataUnavailableError, ae_core.WeightsError) as error:
            st.caption(f"Reconstructions unavailable: {error}")
            return
        st.image(enlarge(strip, 2), caption="top: test images · middle: 2-D · bottom: 10-D reconstruction",
                 output_format="PNG")
