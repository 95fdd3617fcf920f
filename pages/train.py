"""Train a new 2-D model in a process of its own, watch it learn, then explore it on every page."""

import uuid

import streamlit as st

from ae_core import TrainConfig
from ae_core.jobs import MIN_STEPS, TrainerBusy, default_name, discard, failure_advice, training_budget
from ui import frame, state
from ui.figures import loss_curves

frame.require()

FORMATION_SAMPLE = 1000  # Test images whose codes are recorded after every epoch.

choice = state.current()
trainer = state.trainer()
owner = st.session_state.setdefault("owner", uuid.uuid4().hex)  # This session, as owner of its runs.
st.title("Train a model")
st.caption(f"Train a new 2-D autoencoder with the same architecture and explore it on every page. "
           f"It trains in a process of its own: the other pages stay usable, one training runs at "
           f"a time on this server, and one run may use at most {training_budget():,} training "
           f"images in all (epochs × images). The shipped weights are never touched.")

for leftover in state.leftovers():
    st.warning(f"The server stopped while **{leftover.name}** was training ({leftover.epoch} of "
               f"{leftover.config.epochs} epochs done).")
    resume_column, discard_column, _ = st.columns([1, 1, 4])
    if resume_column.button("Resume it", key=f"resume_{leftover.name}", icon=":material/play_arrow:"):
        try:
            trainer.resume(leftover, owner)
            st.session_state["my_run"] = leftover.name
        except TrainerBusy as error:
            st.error(str(error))
        state.leftovers.clear()
        st.rerun()
    if discard_column.button("Discard it", key=f"discard_{leftover.name}", icon=":material/delete:"):
        discard(leftover)
        state.leftovers.clear()
        st.rerun()


def start() -> None:
    """The form's button: start a run with the form's values, or say why not."""
    values = st.session_state
    config = TrainConfig(latent_dim=2, dataset=values["train_dataset"], epochs=values["train_epochs"],
                         train_subset=values["train_images"], batch_size=values["train_batch_size"],
                         optimizer=values["train_optimizer"], learning_rate=values["train_learning_rate"],
                         formation_sample=FORMATION_SAMPLE)
    try:
        trainer.start(config, values["train_name"].strip(), owner)
    except (TrainerBusy, ValueError) as error:
        st.session_state["train_problem"] = str(error)
        return
    st.session_state.pop("train_problem", None)
    st.session_state["my_run"] = values["train_name"].strip()
    st.session_state["train_name"] = default_name(values["train_dataset"])  # The next run's name.


job = trainer.current
running = job is not None and job.running
if not st.session_state.get("train_name"):
    st.session_state["train_name"] = default_name(choice.dataset)  # Offer a fresh, valid name.
if st.session_state.get("train_follows") != choice.dataset:
    st.session_state["train_follows"] = st.session_state["train_dataset"] = choice.dataset
with st.form("train_form", border=True):
    first, second, third = st.columns(3, gap="medium")
    first.selectbox("Dataset", list(state.DATASETS), format_func=state.DATASETS.get, key="train_dataset")
    first.text_input("Name of the new model", key="train_name", max_chars=40,
                     help="Lower-case letters, digits, '-' and '_'. The model is saved under "
                          "trained/<name>/ and listed in the sidebar.")
    second.slider("Epochs", min_value=1, max_value=30, value=5, key="train_epochs")
    second.select_slider("Training images", options=[2000, 5000, 10_000, 20_000, 30_000, 60_000],
                         value=10_000, key="train_images",
                         help="The first N of the 60,000 training images. About 700 to 3,000 "
                              "images a second on 2 CPU cores.")
    second.select_slider("Batch size", options=[32, 64, 128, 256], value=128, key="train_batch_size",
                         help=f"Smaller batches take more steps per epoch. A run needs at least "
                              f"{MIN_STEPS} steps (epochs × images ÷ batch size) to learn anything.")
    third.radio("Optimiser", ["adam", "rmsprop"], horizontal=True, key="train_optimizer",
                captions=["ours", "the article's"])
    third.select_slider("Learning rate", options=[3e-4, 1e-3, 3e-3], value=1e-3,
                        format_func=lambda rate: f"{rate:g}", key="train_learning_rate")
    st.form_submit_button("Start training", type="primary", on_click=start, disabled=running,
                          icon=":material/model_training:", key="train_start")
if "train_problem" in st.session_state:
    st.error(st.session_state["train_problem"])


@st.fragment(run_every=1.0 if running else None)
def progress_panel() -> None:
    """Polls the run once a second while it trains; the rest of the page stays still."""
    job = trainer.current
    mine = job is not None and job.owner == owner and st.session_state.get("my_run") == job.name
    if job is not None and job.running and not mine:
        progress = job.progress()
        st.info(f"Another visitor's training, {progress.name}, is running: epoch {progress.epoch} "
                f"of {progress.epochs}. Yours can start when it ends.")
        st.progress(min(progress.epoch / progress.epochs, 1.0))
        return
    if not mine:
        history = state.model(choice).card.get("history", [])
        st.subheader(f"How {'the shipped model' if choice.name == 'shipped' else choice.name} trained")
        if history:
            st.plotly_chart(loss_curves([{**row, "epoch": row["epoch"] + 1} for row in history]),
                            key="train_curves", config={"displaylogo": False})
        return
    progress = job.progress()
    st.subheader(f"{progress.name}: {progress.status}")
    st.progress(min(progress.epoch / progress.epochs, 1.0), text=progress.message)
    if progress.history:
        st.plotly_chart(loss_curves([{**row, "epoch": row["epoch"] + 1} for row in progress.history]),
                        key="train_curves", config={"displaylogo": False})
    if progress.status == "running":
        st.button("Cancel training", on_click=job.cancel, args=(owner,), key="train_cancel",
                  icon=":material/stop:")
    elif running:
        st.rerun(scope="app")  # It has just ended: rerun the whole app so the sidebar lists the model.
    elif progress.status == "done":
        st.success(f"Choose **{progress.name}** under *Model* in the sidebar to explore it on every page.")
    elif progress.status == "failed":
        st.error(failure_advice(progress, job.config))


progress_panel()

st.subheader("How the map formed")
formation = state.formation_figure(choice)
if formation is None:
    st.caption("The model in use has no record of its training. Models trained on this page "
               "record where 1,000 test images land after every epoch; choose one in the sidebar.")
else:
    st.caption("Where the same test images landed after each epoch of this model's training: "
               "press play, or drag the slider, to watch the classes separate.")
    st.plotly_chart(formation, key="formation_chart", config={"displaylogo": False})
