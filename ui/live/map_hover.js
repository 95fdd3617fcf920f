// The map page's live view: wherever the pointer is over the latent map, between the points
// as well as on them, the image the decoder draws at that (z1, z2), every frame.
//
// plotly's own hover event fires only when the nearest point changes, a few times a second,
// so this listens to raw pointer moves and converts the pixel to data with the map's axes.
// It never talks to the server.

const HOVER_HTML = `
  <div class="live">
    <canvas class="digit" data-part="canvas" width="28" height="28"
      aria-label="the image decoded under the pointer"></canvas>
    <div class="readout" data-part="readout">Move the pointer over the map: this is what the decoder draws there.</div>
  </div>`;

export default function (component) {
  const mounted = mountView(component, HOVER_HTML);
  if (!mounted) return;
  const { settings, view } = mounted;
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
  const options = { capture: true, passive: true };
  if (view.listener) document.removeEventListener("pointermove", view.listener, options);
  view.listener = onPointerMove;
  document.addEventListener("pointermove", onPointerMove, options);
  return () => document.removeEventListener("pointermove", onPointerMove, options);
}
