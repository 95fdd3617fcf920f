// The Compare page's live view: two latent maps of the same test images, linked in the browser.
//
// Hovering over one map decodes the pointer's code with that map's decoder, finds the test
// image nearest to the pointer in that map, and decodes that image's code in the other map
// with the other decoder, marking its place there. A click rings the clicked image in both
// maps; a box or lasso selection in one selects the same images in the other. Nothing of
// this talks to the server: the decoders and points are immutable assets (ui/assets.py).
//
// Both point assets list the test images in test order (ae_core.store.points_blob), so a
// position in one is the same image in the other.

const COMPARE_HTML = `
  <div class="pair">
    ${digitHTML("the left model's image", "leftCanvas", "leftReadout", "Hover over either map.")}
    ${digitHTML("the right model's image", "rightCanvas", "rightReadout")}
  </div>`;

const SIDES = ["left", "right"];
const OTHER = { left: "right", right: "left" };

function chartOf(key) {
  const chart = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const layout = chart && chart._fullLayout;
  return layout && layout.xaxis && layout.xaxis.p2d ? chart : null;
}

// The test image whose code in `points` is nearest to `z`.
function nearestIndex(points, z) {
  let best = 0, bestDistance = Infinity;
  for (let i = 0; i < points.count; i++) {
    const d1 = points.z1[i] - z[0], d2 = points.z2[i] - z[1];
    const distance = d1 * d1 + d2 * d2;
    if (distance < bestDistance) { bestDistance = distance; best = i; }
  }
  return best;
}

// An SVG mark laid over a chart at a code, redrawn each frame so that it follows zoom and pan.
function overlayMark(className, colours, radius) {
  const overlay = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  overlay.setAttribute("class", className);
  overlay.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;z-index:2";
  for (const [colour, width] of colours) {
    const circle = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    circle.setAttribute("r", radius);
    circle.setAttribute("fill", "none");
    circle.setAttribute("stroke", colour);
    circle.setAttribute("stroke-width", width);
    overlay.appendChild(circle);
  }
  return overlay;
}

function placeMark(overlay, chart, z, index) {
  const container = chart.querySelector(".svg-container");
  const layout = chart._fullLayout;
  if (!container) return;
  if (overlay.parentNode !== container) container.appendChild(overlay);
  if (!z) {
    overlay.style.display = "none";
    delete overlay.dataset.index;
    return;
  }
  const x = layout.xaxis._offset + layout.xaxis.d2p(z[0]);
  const y = layout.yaxis._offset + layout.yaxis.d2p(z[1]);
  overlay.style.display = "";
  for (const circle of overlay.children) {
    circle.setAttribute("cx", x.toFixed(1));
    circle.setAttribute("cy", y.toFixed(1));
  }
  overlay.dataset.index = String(index);
  overlay.dataset.z = JSON.stringify(z);
}

// Select the test images `indices` (or none, for null) in `chart`'s point traces.
function selectIn(chart, indices) {
  const wanted = indices && new Set(indices);
  const traces = [], selected = [];
  chart.data.forEach((trace, number) => {
    if (!trace.meta || trace.meta.points === undefined || !trace.customdata) return;
    traces.push(number);
    if (!wanted) { selected.push(null); return; }
    const positions = [];
    for (let i = 0; i < trace.customdata.length; i++) if (wanted.has(trace.customdata[i])) positions.push(i);
    selected.push(positions);
  });
  if (traces.length) window.Plotly.restyle(chart, { selectedpoints: selected }, traces);
  chart.dataset.linkedSelection = indices ? String(indices.length) : "";
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const settings = openEnvelope(data);
  let view = views.get(parentElement);
  if (!view) {
    const root = document.createElement("div");
    root.innerHTML = COMPARE_HTML;
    parentElement.appendChild(root);
    view = { root, marks: {}, ring: null, hover: null };
    for (const part of root.querySelectorAll("[data-part]")) view[part.dataset.part] = part;
    for (const side of SIDES) {
      view.marks[side] = {
        ring: overlayMark("chosen-ring", [["white", 5], ["black", 2]], 11),
        nearest: overlayMark("nearest-mark", [["white", 4], ["#d6006f", 2]], 7),
      };
    }
    views.set(parentElement, view);
  }
  view.settings = settings;
  const loads = SIDES.flatMap((side) => [decoderAt(settings[side].decoder),
    pointsAt(settings[side].points)]);
  Promise.all(loads).then(([leftDecoder, leftPoints, rightDecoder, rightPoints]) => {
    if (view.settings !== settings) return;
    view.decoders = { left: leftDecoder, right: rightDecoder };
    view.points = { left: leftPoints, right: rightPoints };
    start(view);
  }, (error) => {
    if (view.failed) return;
    view.failed = true;
    showFailure(view.root, error, setStateValue);
  });
  return () => stop(view);
}

function start(view) {
  const pixels = new Float32Array(784);
  const canvases = { left: view.leftCanvas, right: view.rightCanvas };
  const readouts = { left: view.leftReadout, right: view.rightReadout };
  const draw = ({ side, z }) => {
    const other = OTHER[side];
    const index = nearestIndex(view.points[side], z);
    const otherZ = [view.points[other].z1[index], view.points[other].z2[index]];
    paintDigit(canvases[side], view.decoders[side].decode(z, pixels));
    paintDigit(canvases[other], view.decoders[other].decode(otherZ, pixels));
    const [where, hint] = view.moved ? ["the pointer", ""] : ["the origin", "; hover over either map."];
    readouts[side].textContent = `${view.settings[side].title}: decoded ${view.moved ? "under" : "at"} ${where}, ` +
      `z = ${formatZ(z)}${hint}`;
    readouts[other].textContent = `${view.settings[other].title}: test image #${index}, nearest ${where} ` +
      `on the ${side} map, decoded at its code here, z = ${formatZ(otherZ)}`;
    // The other canvas's drawing is recorded here; the hovered one's by frameScheduler.
    canvases[other].dataset.z = JSON.stringify(otherZ);
    canvases[other].dataset.index = String(index);
    canvases[side].dataset.index = "";
    view.hover = { side: other, z: otherZ, index };
    view.last = { side, z };
  };
  const schedulers = {};
  for (const side of SIDES) {
    schedulers[side] = frameScheduler(canvases[side], (point) => draw({ side, z: point }));
  }

  function onPointerMove(event) {
    for (const side of SIDES) {
      const chart = chartOf(view.settings[side].chart);
      if (!chart) continue;
      const layout = chart._fullLayout;
      const box = chart.getBoundingClientRect();
      const x = event.clientX - box.left - layout.xaxis._offset;
      const y = event.clientY - box.top - layout.yaxis._offset;
      if (x < 0 || y < 0 || x > layout.xaxis._length || y > layout.yaxis._length) continue;
      view.moved = true;
      schedulers[side]([layout.xaxis.p2d(x), layout.yaxis.p2d(y)], event.timeStamp);
      return;
    }
  }

  // Listeners on each chart once, and the marks placed each frame: Streamlit may draw a chart anew.
  const tick = () => {
    view.frame = requestAnimationFrame(tick);
    for (const side of SIDES) {
      const chart = chartOf(view.settings[side].chart);
      if (!chart || !chart.on) continue;
      if (!chart.dataset.linked) {
        chart.dataset.linked = "yes";
        chart.on("plotly_click", (event) => {
          const point = event.points && event.points[0];
          if (point && point.customdata !== undefined) view.ring = Number(point.customdata);
        });
        chart.on("plotly_selected", (event) => {
          if (!event || !event.points) return;
          const indices = event.points.map((point) => Number(point.customdata));
          const other = chartOf(view.settings[OTHER[side]].chart);
          if (other) selectIn(other, indices);
        });
        chart.on("plotly_deselect", () => {
          const other = chartOf(view.settings[OTHER[side]].chart);
          if (other) selectIn(other, null);
        });
      }
      const points = view.points[side];
      const ring = view.ring === null ? null : [points.z1[view.ring], points.z2[view.ring]];
      placeMark(view.marks[side].ring, chart, ring, view.ring);
      const nearest = view.hover && view.hover.side === side ? view.hover : null;
      placeMark(view.marks[side].nearest, chart, nearest && nearest.z, nearest && nearest.index);
    }
  };
  stop(view);
  view.frame = requestAnimationFrame(tick);
  // Images from the start, not black squares: the origin, or after new kinds, the last place hovered.
  const first = view.last || { side: "left", z: [0, 0] };
  schedulers[first.side](first.z);
  view.listener = onPointerMove;
  document.addEventListener("pointermove", onPointerMove, COMPARE_LISTENER);
}

const COMPARE_LISTENER = { capture: true, passive: true };

function stop(view) {
  if (view.frame) cancelAnimationFrame(view.frame);
  view.frame = null;
  if (view.listener) document.removeEventListener("pointermove", view.listener, COMPARE_LISTENER);
  view.listener = null;
}
