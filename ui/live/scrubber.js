// The paths page's scrubber: drag along the segment from A to B (or press the arrow keys)
// and the digit morphs from one end to the other at frame rate, decoded in the browser.

const TRACK = { width: 480, height: 46, left: 22, right: 458, y: 28 }; // canvas pixels

const SCRUB_HTML = `
  <div class="scrub-row">
    <div class="scrub">
      <canvas class="track" data-part="track" width="${TRACK.width}" height="${TRACK.height}" tabindex="0"
        role="slider" aria-label="how far along the path from A to B: drag, or use the arrow keys"></canvas>
      <div class="readout" data-part="readout"></div>
    </div>
    <canvas class="digit" data-part="canvas" width="28" height="28"
      aria-label="the image decoded at that point of the path"></canvas>
  </div>`;

export default function (component) {
  mountView(component, SCRUB_HTML, bindPointerAndKeys, startScrubber);
}

function startScrubber(settings, view) {
  [view.a, view.b] = [settings.a, settings.b];
  if (view.t === undefined) view.t = settings.t;
  const pixels = new Float32Array(784);
  const request = frameScheduler(view.canvas, (t) => {
    const z = view.a.map((start, i) => start + t * (view.b[i] - start));
    paintDigit(view.canvas, view.decoder.decode(z, pixels));
    view.readout.textContent = `${Math.round(t * 100)}% of the way from A to B, decoded at z = ${formatZ(z)}`;
    view.canvas.dataset.code = JSON.stringify(z);
    drawTrack(view);
  });
  view.moveTo = (t, eventTime) => {
    view.t = Math.min(1, Math.max(0, t));
    request(view.t, eventTime);
  };
  view.moveTo(view.t); // New ends: redraw where the handle stands.
}

function bindPointerAndKeys(view) {
  // Until the decoder is ready, a move only sets where the handle stands (startScrubber draws it).
  view.moveTo = (t) => { view.t = Math.min(1, Math.max(0, t)); };
  const fractionAt = (event) => {
    const box = view.track.getBoundingClientRect();
    const x = (event.clientX - box.left) * (TRACK.width / box.width);
    return (x - TRACK.left) / (TRACK.right - TRACK.left);
  };
  dragOn(view.track, (event) => view.moveTo(fractionAt(event), event.timeStamp), () => {});
  view.track.addEventListener("keydown", (event) => {
    const step = { ArrowLeft: -0.02, ArrowDown: -0.02, ArrowRight: 0.02, ArrowUp: 0.02 }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    view.moveTo(view.t + (event.shiftKey ? 5 * step : step), event.timeStamp);
  });
}

function drawTrack(view) {
  const context = view.track.getContext("2d");
  context.clearRect(0, 0, TRACK.width, TRACK.height);
  context.strokeStyle = "#333";
  context.lineWidth = 3;
  context.beginPath();
  context.moveTo(TRACK.left, TRACK.y);
  context.lineTo(TRACK.right, TRACK.y);
  context.stroke();
  context.fillStyle = "#333";
  context.font = "bold 14px sans-serif";
  context.textAlign = "center";
  for (const [label, x] of [["A", TRACK.left], ["B", TRACK.right]]) {
    context.beginPath();
    context.arc(x, TRACK.y, 6, 0, 2 * Math.PI);
    context.fill();
    context.fillText(label, x, TRACK.y - 12);
  }
  const x = TRACK.left + view.t * (TRACK.right - TRACK.left);
  context.fillStyle = "white";
  context.strokeStyle = "black";
  context.lineWidth = 2;
  context.beginPath();
  context.arc(x, TRACK.y, 9, 0, 2 * Math.PI);
  context.fill();
  context.stroke();
}
