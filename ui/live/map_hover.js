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

const HOVER_HTML = digitHTML("the image decoded under the pointer", "canvas", "readout",
                             "Move the pointer over the map: this is what the decoder draws there.");

const SVG = "http://www.w3.org/2000/svg";
const hooked = new WeakSet(); // Charts whose selection already clears the tooltip.
const RING_RADIUS = 11; // Pixels: wider than a point's marker, so the point shows inside it.

// Keeps a ring over the chart at `view.ring` (a code, or null), above every trace and
// background. Once per frame it reads the axes, so it follows zoom, pan and resizing, and a
// chart Streamlit has drawn anew; it writes to the page only when the ring has to move. The
// same frame keeps the plot a finger's (followTouch).
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
    for (const plot of chart.querySelectorAll(".nsewdrag")) plot.style.touchAction = "none";
    if (chart.on && window.Plotly && !hooked.has(chart)) {
      // A box or lasso selection left the tooltip of the point hovered before it on screen.
      chart.on("plotly_selected", () => window.Plotly.Fx.unhover(chart));
      hooked.add(chart);
    }
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

// A finger decodes as the mouse hovers: one finger held on the plot is a pointer that draws
// under it, not a drag that pans the map (two fingers, or the toolbar, pan). The touch events
// of a one-finger gesture on the plot are kept from plotly (which would pan), and the plot is
// told not to let the browser scroll under the finger; the pointer events that follow the
// finger reach the hover as a mouse's do. A tap still selects a point: the browser turns a
// tap that plotly did not see into a mouse click, which plotly takes.
// While a finger is down, an inset over the chart's top left corner shows the image, since
// on a phone the hover panel sits below the whole chart.
const INSET_SIDE = 112; // CSS pixels

function followTouch(view, chartKey) {
  if (view.touchListener) return;
  const inset = document.createElement("canvas");
  inset.width = inset.height = 28;
  inset.className = "digit-inset";
  inset.setAttribute("aria-label", "the image decoded under the finger");
  inset.style.cssText = `position:absolute;left:8px;top:8px;width:${INSET_SIDE}px;height:${INSET_SIDE}px;` +
    "image-rendering:pixelated;background:black;border:2px solid white;border-radius:4px;" +
    "box-shadow:0 1px 4px rgba(0,0,0,0.4);pointer-events:none;z-index:3;display:none";
  view.inset = inset;
  let gesture = false;
  const onPlot = (event) => {
    const target = event.target;
    return target instanceof Element && target.closest(`.st-key-${chartKey} .nsewdrag`) !== null;
  };
  const listener = (event) => {
    if (event.type === "touchstart") gesture = event.touches.length === 1 && onPlot(event);
    else if (event.touches.length > 1) gesture = false; // A second finger: plotly's pan.
    if (!gesture) return;
    event.stopPropagation();
    // A move is the finger exploring: nothing of the browser's (a scroll, a pan) may take it.
    if (event.type === "touchmove" && event.cancelable) event.preventDefault();
    const chart = document.querySelector(`.st-key-${chartKey} .js-plotly-plot`);
    const container = chart && chart.querySelector(".svg-container");
    if (container && inset.parentNode !== container) container.appendChild(inset);
    inset.style.display = event.type === "touchend" || event.type === "touchcancel" ? "none" : "";
    if (event.type === "touchend" || event.type === "touchcancel") gesture = false;
  };
  view.touchListener = listener;
  for (const name of TOUCH_EVENTS) document.addEventListener(name, listener, TOUCH_OPTIONS);
}

const TOUCH_EVENTS = ["touchstart", "touchmove", "touchend", "touchcancel"];
const TOUCH_OPTIONS = { capture: true, passive: false };

function stopTouch(view) {
  if (!view.touchListener) return;
  for (const name of TOUCH_EVENTS) document.removeEventListener(name, view.touchListener, TOUCH_OPTIONS);
  view.touchListener = null;
  view.inset.remove();
}

export default function (component) {
  // The ring needs no decoder: it is drawn even in a browser that cannot decode.
  const { settings, view } = mountView(component, HOVER_HTML, null, startHover);
  view.ring = settings.ring;
  followRing(view, settings.chart);
  followPointer(view, settings.chart);
  followTouch(view, settings.chart);
  return () => {
    stopPointer(view);
    stopTouch(view);
    view.stopRing();
  };
}

// Once the decoder is ready: decode wherever the pointer is, at most once per frame, starting
// with where it last moved while the decoder was on its way.
function startHover(settings, view) {
  const pixels = new Float32Array(784);
  view.request = frameScheduler(view.canvas, (z) => {
    view.decoder.decode(z, pixels);
    paintDigit(view.canvas, pixels);
    if (view.inset.style.display !== "none") {
      paintDigit(view.inset, pixels);
      view.inset.dataset.z = JSON.stringify(z);
    }
    const hint = view.pointer ? "" : ". Move the pointer over the map: the decoder draws what lies under it.";
    view.readout.textContent = `decoded at z = ${formatZ(z)}${hint}`;
  });
  // Before the first move, the chosen image's code or the origin: an image, not a black square.
  if (view.pointer) view.request(view.pointer.z, view.pointer.time);
  else view.request(view.ring || [0, 0]);
}

const LISTENER_OPTIONS = { capture: true, passive: true };

// Every pointer move over the chart's plot area, as a code (z1, z2), in view.pointer, and to
// the decoder when it is ready.
function followPointer(view, chartKey) {
  function onPointerMove(event) {
    const chart = document.querySelector(`.st-key-${chartKey} .js-plotly-plot`);
    const layout = chart && chart._fullLayout;
    if (!layout || !layout.xaxis || !layout.xaxis.p2d) return;
    const box = chart.getBoundingClientRect();
    const x = event.clientX - box.left - layout.xaxis._offset;
    const y = event.clientY - box.top - layout.yaxis._offset;
    if (x < 0 || y < 0 || x > layout.xaxis._length || y > layout.yaxis._length) return;
    view.pointer = { z: [layout.xaxis.p2d(x), layout.yaxis.p2d(y)], time: event.timeStamp };
    if (view.request) view.request(view.pointer.z, view.pointer.time);
  }

  // One listener per element, however often Streamlit runs the view again; capturing, so
  // that no handler of plotly's can hide a move from it. A finger's first touch decodes too,
  // before it moves.
  stopPointer(view);
  view.listener = onPointerMove;
  view.downListener = (event) => { if (event.pointerType === "touch") onPointerMove(event); };
  document.addEventListener("pointermove", onPointerMove, LISTENER_OPTIONS);
  document.addEventListener("pointerdown", view.downListener, LISTENER_OPTIONS);
}

function stopPointer(view) {
  if (view.listener) document.removeEventListener("pointermove", view.listener, LISTENER_OPTIONS);
  if (view.downListener) document.removeEventListener("pointerdown", view.downListener, LISTENER_OPTIONS);
  view.listener = view.downListener = null;
}
