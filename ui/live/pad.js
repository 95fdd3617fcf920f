// The sliders page's 2-D pad: drag the handle over the small map (or press the arrow keys)
// and the decoded digit follows every frame, in the browser. Only when the handle is let
// go does the point go to the server, as a trigger that sets the sliders and the URL.

const PAD = { size: 320, left: 34, top: 8, side: 276 }; // canvas pixels; the plot is a square

export default function ({ data, parentElement, setStateValue, setTriggerValue }) {
  const { settings, bundle } = openEnvelope(data);
  let view = views.get(parentElement);
  if (!view) {
    const root = document.createElement("div"); // Beside Streamlit's <style>, not over it.
    root.innerHTML = `
      <div class="pad-row">
        <canvas class="pad" width="${PAD.size}" height="${PAD.size}" tabindex="0" role="slider"
          aria-label="the point (z1, z2): drag, or use the arrow keys"></canvas>
        <div class="live">
          <canvas class="digit" width="28" height="28" aria-label="the digit decoded at the handle"></canvas>
          <div class="readout"></div>
        </div>
      </div>`;
    parentElement.appendChild(root);
    view = { root,
      pad: root.querySelector(".pad"), canvas: root.querySelector(".digit"),
      readout: root.querySelector(".readout"), background: new Image(), dragging: false,
    };
    views.set(parentElement, view);
    bindPointerAndKeys(view);
  }
  try {
    view.decoder = decoderFor(bundle);
  } catch (error) {
    showFailure(view.root, error, setStateValue);
    return;
  }
  const [low, high] = settings.window;
  view.low = low;
  view.high = high;
  view.step = settings.step;
  view.commit = (z) => setTriggerValue("release", z.map((value) => roundTo(value, view.step)));
  if (view.background.src !== settings.background) {
    view.background.onload = () => drawPad(view);
    view.background.src = settings.background;
  }
  const pixels = new Float32Array(784);
  const request = frameScheduler(view.canvas, (z) => {
    paintDigit(view.canvas, view.decoder.decode(z, pixels));
    view.readout.textContent = `decoded at z = ${formatZ(z)}`;
    drawPad(view);
  });
  view.moveTo = (z, eventTime) => {
    view.z = z; // At once, so that keys pressed within one frame add up.
    request(z, eventTime);
  };
  if (!view.dragging) view.moveTo(settings.z); // The server's point: a slider or a link moved it.
}

function roundTo(value, step) {
  return Math.round(value / step) * step;
}

function toLatent(view, x, y) {
  const span = view.high - view.low;
  const clamp = (value) => Math.min(view.high, Math.max(view.low, value));
  return [clamp(view.low + ((x - PAD.left) / PAD.side) * span),
          clamp(view.high - ((y - PAD.top) / PAD.side) * span)];
}

function toPixels(view, z) {
  const span = view.high - view.low;
  return [PAD.left + ((z[0] - view.low) / span) * PAD.side, PAD.top + ((view.high - z[1]) / span) * PAD.side];
}

function bindPointerAndKeys(view) {
  const { pad } = view;
  const pointAt = (event) => {
    const box = pad.getBoundingClientRect();
    const scale = PAD.size / box.width; // CSS may draw the canvas at another size.
    return toLatent(view, (event.clientX - box.left) * scale, (event.clientY - box.top) * scale);
  };
  pad.addEventListener("pointerdown", (event) => {
    view.dragging = true;
    pad.setPointerCapture(event.pointerId);
    pad.focus({ focusVisible: false }); // The ring is for keyboard users.
    view.moveTo(pointAt(event), event.timeStamp);
  });
  pad.addEventListener("pointermove", (event) => {
    if (view.dragging) view.moveTo(pointAt(event), event.timeStamp);
  });
  const release = (event) => {
    if (!view.dragging) return;
    view.dragging = false;
    view.commit(pointAt(event));
  };
  pad.addEventListener("pointerup", release);
  pad.addEventListener("pointercancel", release);

  // Arrow keys move by 0.1 (with Shift, by 1); the point is sent once the keys rest.
  let keyTimer = null;
  pad.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    const move = moves[event.key];
    if (!move || !view.z) return;
    event.preventDefault();
    const distance = event.shiftKey ? 1 : 0.1;
    const z = [view.z[0] + move[0] * distance, view.z[1] + move[1] * distance]
      .map((value) => Math.min(view.high, Math.max(view.low, value)));
    view.moveTo(z, event.timeStamp);
    clearTimeout(keyTimer);
    keyTimer = setTimeout(() => view.commit(z), 400);
  });
}

function drawPad(view) {
  const context = view.pad.getContext("2d");
  context.clearRect(0, 0, PAD.size, PAD.size);
  if (view.background.complete && view.background.naturalWidth) {
    context.imageSmoothingEnabled = false;
    context.drawImage(view.background, PAD.left, PAD.top, PAD.side, PAD.side);
  }
  // Axes: the window's ends and 0, and the axis names, as on the map.
  context.fillStyle = "#444";
  context.font = "12px sans-serif";
  context.textAlign = "center";
  for (const value of [view.low, 0, view.high]) {
    const [x, y] = toPixels(view, [value, value]);
    context.fillText(String(value), x, PAD.top + PAD.side + 14);
    context.textAlign = "right";
    context.fillText(String(value), PAD.left - 5, y + 4);
    context.textAlign = "center";
  }
  context.fillText("z1", PAD.left + PAD.side / 2, PAD.size - 1);
  context.save();
  context.translate(10, PAD.top + PAD.side / 2);
  context.rotate(-Math.PI / 2);
  context.fillText("z2", 0, 0);
  context.restore();
  if (!view.z) return;
  // The handle: a ring with a cross, black on white so that it shows on any colour.
  const [x, y] = toPixels(view, view.z);
  for (const [colour, width] of [["white", 5], ["black", 2]]) {
    context.strokeStyle = colour;
    context.lineWidth = width;
    context.beginPath();
    context.arc(x, y, 8, 0, 2 * Math.PI);
    context.moveTo(x - 13, y);
    context.lineTo(x + 13, y);
    context.moveTo(x, y - 13);
    context.lineTo(x, y + 13);
    context.stroke();
  }
}
