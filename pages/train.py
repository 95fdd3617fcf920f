"""Train a new 2-D model in the background, watch it learn, then explore it on every page."""

import streamlit as st

from ae_core import TrainConfig
from ae_core.jobs import TrainerBusy, default_name
from ui import state
from ui.figures import loss_curves

FORMATION_SAMPLE = 1000  # Test images whose codes are recorded after every epoch.

st.title("Train a model")
st.caption("Train a new 2-D autoencoder with the same architecture and explore it on every "
           "page. It trains in the background: the other pages stay usable, and one training "
           "runs at a time on this server. The shipped weights are never touched.")
trainer = state.trainer()


def start() -> None:
    """The form's button: start a run with the form's values, or say why not."""
    values = st.session_state
    try:
        config = TrainConfig(latent_dim=2, dataset=values["train_dataset"], epochs=values["train_epochs"],
                             train_subset=values["train_images"], batch_size=values["train_batch_size"],
                             optimizer=values["train_optimizer"],
                             learning_rate=values["train_learning_rate"], patience=5,
                             formation_sample=FORMATION_SAMPLE)
        trainer.start(config, values["train_name"].strip())
    except (TrainerBusy, ValueError) as error:
        st.session_state["train_problem"] = str(error)
        return
    st.session_state.pop("train_problem", None)
    # The next run needs a name of its own.
    st.session_state["train_name"] = default_name(values["train_dataset"])


running = trainer.current is not None and trainer.current.running
if not st.session_state.get("train_name"):
    st.session_state["train_name"] = default_name("mnist")  # Offer a fresh, valid name.
with st.form("train_form", border=True):
    first, second, third = st.columns(3, gap="medium")
    first.selectbox("Dataset", list(state.DATASETS), format_func=state.DATASETS.get, key="train_dataset")
    first.text_input("Name of the new model", key="train_name", max_chars=40,
                     help="Lower-case letters, digits, '-' and '_'. The model is saved under "
                          "trained/<name>/ and listed in the sidebar.")
    second.slider("Epochs", min_value=1, max_value=30, value=5, key="train_epochs")
    second.select_slider("Training images", options=[500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000],
                         value=10_000, key="train_images",
                         help="The first N of the 60,000 training images. About 700 to 3,000 "
                              "images a second on 2 CPU cores.")
    second.select_slider("Batch size", options=[32, 64, 128, 256], value=128, key="train_batch_size",
                         help="Smaller batches take more steps per epoch, which a small subset needs.")
    third.radio("Optimiser", ["adam", "rmsprop"], horizontal=True, key="train_optimizer",
                captions=["ours", "the article's"])
    third.select_slider("Learning rate", options=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3,
                        format_func=lambda rate: f"{rate:g}", key="train_learning_rate")
    st.form_submit_button("Start training", type="primary", on_click=start, disabled=running,
                          icon=":material/model_training:", key="train_start")
if "train_problem" in st.session_state:
    st.error(st.session_state["train_problem"])


@st.fragment(run_every=1.0 if running else None)
def progress_panel() -> None:
    """Polls the run once a second while it trains; the rest of the page stays still."""
    job = trainer.current
    if job is None:
        st.info("No training has run on this server since it started.")
        return
    progress = job.progress()
    st.subheader(f"{progress.name}: {progress.status}")
    st.progress(min(progress.epoch / progress.epochs, 1.0), text=progress.message)
    if progress.history:
        st.plotly_chart(loss_curves(progress.history), key="train_curves", config={"displaylogo": False})
    if progress.status == "running":
        st.button("Cancel training", on_click=job.cancel, key="train_cancel", icon=":material/stop:")
    elif running:
        # It has just ended: rerun the whole app so the sidebar lists the new model.
        st.rerun(scope="app")
    elif progress.status == "done":
        st.success(f"Choose **{progress.name}** under *Model* in the sidebar to explore it on every page.")
    elif progress.status == "failed":
        st.error(progress.message)


progress_panel()

st.subheader("How the map formed")
formation = state.formation_figure()
if formation is None:
    st.caption("The model in use has no record of its training. Models trained on this page "
               "record where 1,000 test images land after every epoch; choose one in the sidebar.")
else:
    st.caption("Where the same test images landed after each epoch of this model's training: "
               "press play, or drag the slider, to watch the classes separate.")
    st.plotly_chart(formation, key="formation_chart", config={"displaylogo": False})
