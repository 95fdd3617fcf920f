// The map page's live view: wherever the pointer is over the latent map, between the points
// as well as on them, the image the decoder draws at that (z1, z2), every frame.
//
// plotly's own hover event fires only when the nearest point changes, a few times a second,
// so this listens to raw pointer moves and converts the pixel to data with the map's axes.
// It never talks to the server.
//
// It also rings the chosen test image. The ring is an SVG laid over the chart rather than a
// trace of the figure: a figure that changed on every click would make plotly redraw all
// 10,000 WebGL points, which doubles the time from a click to its images.

const HOVER_HTML = `
  <div class="live">
    <canvas class="digit" data-part="canvas" width="28" height="28"
      aria-label="the image decoded under the pointer"></canvas>
    <div class="readout" data-part="readout">Move the pointer over the map: this is what the decoder draws there.</div>
  </div>`;

const SVG = "http://www.w3.org/2000/svg";
const RING_RADIUS = 11; // Pixels: wider than a point's marker, so the point shows inside it.

// Keeps a ring over the chart at `view.ring` (a code, or null), above every trace and
// background. Once per frame it reads the axes, so it follows zoom, pan and resizing, and a
// chart Streamlit has drawn anew; it writes to the page only when the ring has to move.
function followRing(view, chartKey) {
  if (view.ringFrame) return;
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("class", "chosen-ring");
  overlay.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;z-index:2";
  for (const [colour, width] of [["white", 5], ["black", 2]]) {
    const circle = document.createElementNS(SVG, "circle");
    circle.setAttribute("r", RING_RADIUS);
    circle.setAttribute("fill", "none");
    circle.setAttribute("stroke", colour);
    circle.setAttribute("stroke-width", width);
    overlay.appendChild(circle);
  }
  let placed = "";
  const place = () => {
    view.ringFrame = requestAnimationFrame(place);
    const chart = document.querySelector(`.st-key-${chartKey} .js-plotly-plot`);
    const container = chart && chart.querySelector(".svg-container");
    const layout = chart && chart._fullLayout;
    if (!container || !layout || !layout.xaxis || !layout.xaxis.d2p) return;
    let where = "hidden";
    if (view.ring) {
      const x = layout.xaxis.d2p(view.ring[0]), y = layout.yaxis.d2p(view.ring[1]);
      if (x >= 0 && y >= 0 && x <= layout.xaxis._length && y <= layout.yaxis._length) {
        where = `${(layout.xaxis._offset + x).toFixed(1)},${(layout.yaxis._offset + y).toFixed(1)}`;
      }
    }
    if (overlay.parentNode !== container) container.appendChild(overlay);
    if (where === placed) return;
    placed = where;
    overlay.style.display = where === "hidden" ? "none" : "";
    if (where === "hidden") return;
    const [cx, cy] = where.split(",");
    for (const circle of overlay.children) {
      circle.setAttribute("cx", cx);
      circle.setAttribute("cy", cy);
    }
    overlay.dataset.z = JSON.stringify(view.ring);
  };
  view.ringFrame = requestAnimationFrame(place);
  view.stopRing = () => {
    cancelAnimationFrame(view.ringFrame);
    view.ringFrame = null;
    overlay.remove();
  };
}

export default function (component) {
  // The ring needs no decoder: it is drawn even in a browser that cannot decode.
  const { settings, view } = mountView(component, HOVER_HTML, null, startHover);
  view.ring = settings.ring;
  followRing(view, settings.chart);
  return () => {
    stopHover(view);
    view.stopRing();
  };
}

function startHover(settings, view) {
  const pixels = new Float32Array(784);
  const request = frameScheduler(view.canvas, (z) => {
    paintDigit(view.canvas, view.decoder.decode(z, pixels));
    view.readout.textContent = `decoded at z = ${formatZ(z)}`;
  });

  function onPointerMove(event) {
    const chart = document.querySelector(`.st-key-${settings.chart} .js-plotly-plot`);
    const layout = chart && chart._fullLayout;
    if (!layout || !layout.xaxis || !layout.xaxis.p2d) return;
    const box = chart.getBoundingClientRect();
    const x = event.clientX - box.left - layout.xaxis._offset;
    const y = event.clientY - box.top - layout.yaxis._offset;
    if (x < 0 || y < 0 || x > layout.xaxis._length || y > layout.yaxis._length) return;
    request([layout.xaxis.p2d(x), layout.yaxis.p2d(y)], event.timeStamp);
  }

  // One listener per element, however often Streamlit runs this function again; capturing,
  // so that no handler of plotly's can hide a move from it.
  stopHover(view);
  view.listener = onPointerMove;
  document.addEventListener("pointermove", onPointerMove, LISTENER_OPTIONS);
}

const LISTENER_OPTIONS = { capture: true, passive: true };

function stopHover(view) {
  if (view.listener) document.removeEventListener("pointermove", view.listener, LISTENER_OPTIONS);
  view.listener = null;
}
