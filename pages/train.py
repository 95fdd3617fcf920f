"""Train a new 2-D model in a process of its own, watch it learn, then explore it on every page."""

import math
import secrets

import streamlit as st

from ae_core import TrainConfig, runs
from ae_core.jobs import (MIN_STEPS, Progress, TrainerBusy, check_budget, default_name, discard,
                          failure_advice, finished_card, leftovers, live_runs, stop_run, training_budget)
from ui import frame, state
from ui.figures import loss_curves

FORMATION_SAMPLE = 1000  # Test images whose codes are recorded after every epoch.

choice = frame.page("Train a model")
trainer = state.trainer()
st.caption(f"Train a new 2-D autoencoder with the same architecture and explore it on every page. "
           f"It trains in a process of its own: the other pages stay usable, one training runs at "
           f"a time, and one run may use at most {training_budget():,} training images in all "
           f"(epochs × images). The shipped weights are never touched.")

# Whoever starts a run gets its key, kept in this session and in the link (?run=&key=), so
# that after a reload, or on another replica, its starter can still stop it.
keys = st.session_state.setdefault("run_keys", {})
if "run" in st.query_params and "key" in st.query_params:
    keys.setdefault(st.query_params["run"], st.query_params["key"])


def own(name: str, key: str) -> None:
    keys[name] = key
    st.query_params["run"], st.query_params["key"] = name, key


for leftover in leftovers():  # Read afresh on every view: another replica may have died.
    st.warning(f"The server running **{leftover.name}** stopped while it trained ({leftover.epoch} of "
               f"{leftover.config.epochs} epochs done).")
    resume_column, discard_column, _ = st.columns([1, 1, 4])
    if resume_column.button("Resume it", key=f"resume_{leftover.name}", icon=":material/play_arrow:"):
        key = secrets.token_urlsafe(16)
        try:
            trainer.resume(leftover, key)
            own(leftover.name, key)
        except TrainerBusy as error:
            st.error(str(error))
        st.rerun()
    if discard_column.button("Discard it", key=f"discard_{leftover.name}", icon=":material/delete:"):
        discard(leftover)
        st.rerun()


def form_config() -> TrainConfig:
    values = st.session_state
    return TrainConfig(latent_dim=2, dataset=values["train_dataset"], epochs=values["train_epochs"],
                       train_subset=values["train_images"], batch_size=values["train_batch_size"],
                       optimizer=values["train_optimizer"], learning_rate=values["train_learning_rate"],
                       formation_sample=FORMATION_SAMPLE)


def start() -> bool:
    """Start a run with the form's values; False, with the reason kept for the page, if not."""
    name, key = st.session_state["train_name"].strip(), secrets.token_urlsafe(16)
    try:
        trainer.start(form_config(), name, key)
    except (TrainerBusy, ValueError) as error:
        st.session_state["train_problem"] = str(error)
        return False
    st.session_state.pop("train_problem", None)
    own(name, key)
    st.session_state["train_name_used"] = True  # The next run gets a fresh name.
    return True


live = live_runs()
if not st.session_state.get("train_name") or st.session_state.pop("train_name_used", False):
    st.session_state["train_name"] = default_name(choice.dataset)  # Offer a fresh, valid name.
if st.session_state.get("train_follows") != choice.dataset:
    st.session_state["train_follows"] = st.session_state["train_dataset"] = choice.dataset


@st.fragment
def run_form() -> None:
    """The run's settings; every change reruns only this, to tell its steps before Start."""
    with st.container(border=True):
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
        config = form_config()
        steps = runs.total_steps(config)
        try:
            check_budget(config)
            problem = (None if steps >= MIN_STEPS else
                       f"too few to learn anything: a run needs at least {MIN_STEPS}; choose more "
                       f"epochs or images, or a smaller batch")
        except ValueError as error:
            problem = str(error)[0].lower() + str(error)[1:-1]
        st.caption(f"{':material/check_circle:' if problem is None else ':material/error:'} This run takes "
                   f"**{steps:,} steps** ({config.epochs} × {math.ceil(config.train_subset / config.batch_size):,} "
                   f"a epoch){'.' if problem is None else ': ' + problem + '.'}")
        pressed = st.button("Start training", type="primary", disabled=bool(live) or problem is not None,
                            icon=":material/model_training:", key="train_start")
    if pressed and start():
        st.rerun(scope="app")  # The whole page follows the new run, not only this form.
    if "train_problem" in st.session_state:
        st.error(st.session_state["train_problem"])


run_form()


def outcome(name: str) -> Progress | None:
    """How this session's run ``name`` ended, once no process trains it any more."""
    job = trainer.current
    if job is not None and job.name == name:
        return job.progress()  # Started by this server: it knows exactly how.
    card = finished_card(name)
    if card is not None:
        return Progress("done", card["epochs_run"], card["config"]["epochs"], card["history"],
                        f"Saved as {name}: best val MSE {card['best_val_mse']:.4f}.", name, fraction=1.0)
    return Progress("cancelled", 0, 0, [], "It ended without a model (stopped, or it failed); nothing was saved.",
                    name)


@st.fragment(run_every=1.0 if live else None)
def progress_panel() -> None:
    """Polls the runs once a second while one trains; the rest of the page stays still."""
    now = live_runs()
    mine = [run for run in now if run.owned_by(keys.get(run.name))]
    others = [run for run in now if run not in mine]
    for run in others:
        st.info(f"Another visitor's training, {run.name}, is running: {run.progress.message}. "
                f"Yours can start when it ends.")
        st.progress(run.progress.fraction)
    if mine:
        run = mine[0]
        progress = run.progress
        st.subheader(f"{run.name}: running")
        st.progress(progress.fraction, text=progress.message)
        if progress.history:
            st.plotly_chart(loss_curves([{**row, "epoch": row["epoch"] + 1} for row in progress.history]),
                            key="train_curves", config={"displaylogo": False})
        st.button("Cancel training", on_click=stop_run, args=(run.name, keys[run.name]), key="train_cancel",
                  icon=":material/stop:")
        return
    ended = [name for name in keys if name not in {run.name for run in now}]
    if live and not now:
        st.rerun(scope="app")  # A run has just ended: the sidebar lists the model, the form frees.
    if ended and st.query_params.get("run") in ended:
        name = st.query_params["run"]
        progress = outcome(name)
        st.subheader(f"{name}: {progress.status}")
        if progress.history:
            st.plotly_chart(loss_curves([{**row, "epoch": row["epoch"] + 1} for row in progress.history]),
                            key="train_curves", config={"displaylogo": False})
        if progress.status == "done":
            st.success(f"Choose **{name}** under *Model* in the sidebar to explore it on every page.")
        elif progress.status == "failed":
            st.error(failure_advice(progress, trainer.current.config))  # Only this server knows why.
        else:
            st.info(progress.message)
        return
    if not others:
        history = state.model(choice).card.get("history", [])
        st.subheader(f"How {'the shipped model' if choice.name == 'shipped' else choice.name} trained")
        if history:
            st.plotly_chart(loss_curves([{**row, "epoch": row["epoch"] + 1} for row in history]),
                            key="train_curves", config={"displaylogo": False})


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
