// The map's 10,000 points. The server sends the map's figure with its point traces empty
// (ui/figures.py); this view fetches the points asset once (ui/assets.py, kept by the browser
// for a year) and puts each trace's points into it with Plotly.restyle. It checks every frame,
// so a chart Streamlit draws anew (a rerun, a new colouring) is filled again at once.
//
// Each point trace's `meta.points` says which points it takes: a label, or "all" (coloured
// by reconstruction error). Each point's customdata is its test index, which clicks and box
// or lasso selections report to the server as before.
//
// The drift map under the points comes the same way: a heatmap whose `meta.field` is the URL
// of its values (float32, one row per y value) and whose z is one undrawn cell until then.

// What restyle sets on one trace: its points' codes, test indices and, for "all", colours
// and hover text.
function traceUpdate(points, which, classes) {
  if (which === "all") {
    const text = Array.from(points.label, (label, i) =>
      `label ${classes[label]}<br>error ${points.error[i].toFixed(4)}`);
    return { x: points.z1, y: points.z2, customdata: points.index, "marker.color": points.error, text };
  }
  const chosen = [];
  for (let i = 0; i < points.count; i++) if (points.label[i] === which) chosen.push(i);
  const pick = (values, Type) => Type.from(chosen, (i) => values[i]);
  return { x: pick(points.z1, Float32Array), y: pick(points.z2, Float32Array),
           customdata: pick(points.index, Int32Array) };
}

// A point trace as the server sends it: no points, or one at (null, null) (ui/figures.py).
function unfilled(trace) {
  return trace.meta && trace.meta.points !== undefined &&
    (!trace.x || trace.x.length === 0 || (trace.x.length === 1 && trace.x[0] === null));
}

// Fill the chart's empty point traces, once the points have come.
function fillPoints(chart, view) {
  const { settings, points } = view;
  if (!points) return;
  const empty = [];
  chart.data.forEach((trace, index) => {
    if (unfilled(trace)) empty.push(index);
  });
  if (!empty.length) return;
  const updates = empty.map((index) => traceUpdate(points, chart.data[index].meta.points, settings.classes));
  const merged = {};
  for (const key of Object.keys(updates[updates.length - 1])) merged[key] = updates.map((update) => update[key]);
  window.Plotly.restyle(chart, merged, empty);
  chart.dataset.points = String(chart.data.reduce((total, trace) =>
    total + (trace.meta && trace.meta.points !== undefined && trace.x ? trace.x.length : 0), 0));
}

const fields = new Map(); // field URL -> Promise of its values
// field URL -> its values once they have come, or null once they failed to: a failed field
// is asked for again at the view's next run (not every frame), as the points are.
const loadedFields = new Map();

// A field's heatmap as the server sends it: z is [[null]] (ui/figures.py add_drift).
function unfilledField(trace) {
  return trace.meta && typeof trace.meta.field === "string" &&
    (!trace.z || (trace.z.length === 1 && trace.z[0].length === 1 && trace.z[0][0] === null));
}

// Put each field's values into its heatmap once they have come; ask for those not asked yet.
function fillFields(chart) {
  chart.data.forEach((trace, index) => {
    if (!unfilledField(trace)) return;
    const url = trace.meta.field;
    const values = loadedFields.get(url);
    if (values === null) return;
    if (!values) {
      if (!fields.has(url)) {
        fetchAsset(url, fields, (buffer) => new Float32Array(buffer)).then(
          (read) => loadedFields.set(url, read), () => loadedFields.set(url, null));
      }
      return;
    }
    // The trace's y as plotly read it: in chart.data it is still the server's base64 spec.
    const full = chart._fullData.find((candidate) => candidate.index === index);
    const rows = full && full.y ? full.y.length : 0, columns = values.length / rows;
    if (!rows || !Number.isInteger(columns)) return;
    const z = Array.from({ length: rows }, (_, row) => values.subarray(row * columns, (row + 1) * columns));
    window.Plotly.restyle(chart, { z: [z] }, [index]);
  });
}

// Fill what is still empty in the chart keyed `settings.chart`, if it is drawn.
function fill(view) {
  const chart = document.querySelector(`.st-key-${view.settings.chart} .js-plotly-plot`);
  if (!chart || !chart._fullLayout || !chart.data || !window.Plotly) return;
  fillPoints(chart, view);
  fillFields(chart);
}

export default function ({ data, parentElement }) {
  const settings = openEnvelope(data);
  let view = views.get(parentElement);
  if (!view) {
    view = {};
    views.set(parentElement, view);
  }
  view.settings = settings;
  for (const [url, values] of loadedFields) if (values === null) loadedFields.delete(url);
  pointsAt(settings.points).then((points) => {
    if (view.settings === settings) view.points = points;
  });
  if (!view.frame) {
    const tick = () => {
      view.frame = requestAnimationFrame(tick);
      fill(view);
    };
    view.frame = requestAnimationFrame(tick);
  }
  return () => {
    cancelAnimationFrame(view.frame);
    view.frame = null;
  };
}
