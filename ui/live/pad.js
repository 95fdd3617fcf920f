// The sliders page's 2-D pad: drag the handle over the small map (or press the arrow keys)
// and the decoded digit follows every frame, in the browser. Only when the handle is let
// go does the point go to the server, as a trigger that sets the sliders and the URL.

const PAD = { size: 320, left: 34, top: 8, side: 276 }; // canvas pixels; the plot is a square

const PAD_HTML = `
  <div class="pad-row">
    <canvas class="pad" data-part="pad" width="${PAD.size}" height="${PAD.size}" tabindex="0" role="slider"
      aria-label="the point (z1, z2): drag, or use the arrow keys"></canvas>
    ${digitHTML("the image decoded at the handle")}
  </div>`;

export default function (component) {
  const { settings, view } = mountView(component, PAD_HTML, bindPointerAndKeys, startPad);
  view.commit = (z) => component.setTriggerValue("release", z.map((value) => roundTo(value, settings.step)));
}

function startPad(settings, view) {
  [view.low, view.high] = settings.window;
  if (!view.background) view.background = new Image();
  if (view.background.getAttribute("src") !== settings.background) {
    view.background.onload = () => drawPad(view);
    view.background.src = settings.background; // An immutable asset: fetched once, then cached.
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
  // The server's point (a slider or a link moved it), unless the handle is held or was moved
  // before the decoder was ready.
  if (!view.dragging() && !view.movedEarly) view.moveTo(settings.z);
  else if (view.z) view.moveTo(view.z);
  view.movedEarly = false;
}

function roundTo(value, step) {
  return Math.round(value / step) * step;
}

function clampTo(view, value) {
  return Math.min(view.high, Math.max(view.low, value));
}

function toLatent(view, x, y) {
  const span = view.high - view.low;
  return [clampTo(view, view.low + ((x - PAD.left) / PAD.side) * span),
          clampTo(view, view.high - ((y - PAD.top) / PAD.side) * span)];
}

function toPixels(view, z) {
  const span = view.high - view.low;
  return [PAD.left + ((z[0] - view.low) / span) * PAD.side, PAD.top + ((view.high - z[1]) / span) * PAD.side];
}

function bindPointerAndKeys(view) {
  // Until the decoder is ready, a move only sets the point (startPad draws it).
  view.moveTo = (z) => {
    view.z = z;
    view.movedEarly = true;
  };
  const pointAt = (event) => {
    const box = view.pad.getBoundingClientRect();
    const scale = PAD.size / box.width; // CSS may draw the canvas at another size.
    return toLatent(view, (event.clientX - box.left) * scale, (event.clientY - box.top) * scale);
  };
  // Let go where the handle last was: a finger's lifting may report no position of its own.
  view.dragging = dragOn(view.pad, (event) => view.moveTo(pointAt(event), event.timeStamp),
                         (event) => view.commit(view.z || pointAt(event)));

  // Arrow keys move by 0.1 (with Shift, by 1); the point is sent once the keys rest.
  let keyTimer = null;
  view.pad.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    const move = moves[event.key];
    if (!move || !view.z) return;
    event.preventDefault();
    const distance = event.shiftKey ? 1 : 0.1;
    const z = [clampTo(view, view.z[0] + move[0] * distance), clampTo(view, view.z[1] + move[1] * distance)];
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
