"""Two kinds of model side by side: the same 10,000 test images on both maps, linked in the
browser, and each model's figures beneath."""

import dataclasses

import streamlit as st

import ae_core
from ae_core.compare import encoder_width, model_figures
from ae_core.config import WINDOW
from ui import compare_view, figures, frame, live, state
from ui.sidebar import KIND_LABELS


choice = frame.page("Compare two kinds")
kinds = ae_core.available_kinds(choice.dataset, choice.name)
if not kinds:
    st.error(f"This model has no 2-D weights for {state.DATASETS[choice.dataset]}; choose another in the sidebar.")
    st.stop()
st.caption("Both maps place the same 10,000 test images, each by its own model's encoder. Hover over "
           "one map: its decoder draws the code under the pointer, and the other model draws the test "
           "image nearest to the pointer in the hovered map, at that image's code in its own map (marked "
           "there with a pink circle), since the same (z1, z2) means nothing alike in two models. Click a "
           f"point to ring that {choice.item()} in both maps; a box or lasso selection in one selects the "
           f"same {choice.item(2)} in the other.")

left_column, right_column = st.columns(2)
# The options are written as they appear in the URL (?left=ae&right=vae); the help names them.
left_kind = left_column.selectbox("Left map", list(kinds), key="left", bind="query-params",
                                  help=", ".join(f"{k}: {KIND_LABELS[k]}" for k in kinds))
right_kind = right_column.selectbox("Right map", list(kinds), index=min(1, len(kinds) - 1), key="right",
                                    bind="query-params", help=", ".join(f"{k}: {KIND_LABELS[k]}" for k in kinds))
# The sidebar names each missing kind with the command that trains it.
if len(kinds) == 1:
    st.info(f"Only the {KIND_LABELS[kinds[0]]} has weights for {state.DATASETS[choice.dataset]} here, so both "
            f"maps show it; the sidebar gives the command that trains each other kind.")
sides = {"left": dataclasses.replace(choice, kind=left_kind), "right": dataclasses.replace(choice, kind=right_kind)}
try:  # Each side's card, codes and decoder, or the one sentence that says what to fix.
    for chosen in sides.values():
        state.model(chosen)
        state.map_data(chosen)
except (ae_core.WeightsError, ae_core.DataUnavailableError) as error:
    state.stop_with(error)


@st.cache_resource(max_entries=8, show_spinner=False)
def compare_figure(chosen: state.Choice):
    """A map as the map page draws it, smaller, its point traces filled in the browser."""
    figure = figures.latent_map(chosen.class_names, height=480, half_width=state.code_extent(chosen))
    figure.update_layout(clickmode="event+select", dragmode="pan", hovermode="closest", showlegend=False)
    return figure


def _selected() -> None:
    """Clicks and selections are linked in the browser; the server has nothing to redraw."""


titles = (f"left, {KIND_LABELS[left_kind]}", f"right, {KIND_LABELS[right_kind]}")
hover = compare_view.linked_maps(sides["left"], sides["right"], "compare_left", "compare_right", titles)
if hover.failed:
    st.caption("The maps still link clicks and selections; only the decoded images need the decoder.")
for column, side in zip(st.columns(2), ("left", "right")):
    with column:
        # Named above the chart, not in its title, which a long name ran under plotly's toolbar.
        st.markdown(f"**{KIND_LABELS[sides[side].kind]}**")
        live.map_points(sides[side], f"compare_{side}")
        st.plotly_chart(compare_figure(sides[side]), key=f"compare_{side}", on_select=_selected,
                        selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": True, "displayModeBar": True})


@st.cache_resource(show_spinner="Measuring both models (once per model: it encodes the 60,000 training images)…")
def figures_of(chosen: state.Choice) -> dict:
    # The encoder's width too: reading it checks the weights' SHA-256, once per model, not per rerun.
    return {**model_figures(chosen.dataset, chosen.name, chosen.kind),
            "encoder": encoder_width(chosen.dataset, chosen.name, chosen.kind)}


st.subheader("Figures")
try:
    rows = {side: figures_of(chosen) for side, chosen in sides.items()}
except ae_core.DataUnavailableError as error:
    state.stop_with(error)
st.table({
    "": ["test MSE", "5-NN accuracy of the 2-D codes", f"codes inside [{WINDOW[0]:g}, {WINDOW[1]:g}]²",
         "clear cells of the 10x10 grid", "training time", "encoder"],
    **{f"{side}: {sides[side].kind}": [f"{row['test_mse']:.4f}", f"{row['knn_5']:.1%}", f"{row['inside_window']:.1%}",
                                      f"{int(row['clear_cells'])} / 100", f"{row['training_seconds']:.0f} s",
                                      row["encoder"]]
       for side, row in rows.items()}})
st.caption("5-NN: each test code takes the label most of its 5 nearest training codes have. Clear cells: "
           "decoded grid cells the evaluation classifier reads with at least 90% confidence. Both are "
           "computed once per model's weights and kept on disk.")
