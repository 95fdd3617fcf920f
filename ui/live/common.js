// What every live view shares: its settings, its decoder, its digit, and the way it fails.
//
// A view's data is its settings as a framed JSON header (ui/live.py, readFramed). The decoder
// is not in it: `settings.decoder` is the URL of the decoder bundle, an immutable asset the
// browser fetches once and keeps (ui/assets.py). Streamlit runs a view again on the same
// element each time its data changes, without the previous cleanup, so a view keeps its own
// state per element in `views` and builds its DOM only once.

function openEnvelope(data) {
  return readFramed(data instanceof Uint8Array ? data.slice().buffer : data).header;
}

// An asset's bytes; a failed fetch is forgotten, so that the next run of the view tries again.
function fetchAsset(url, cache, read) {
  if (!cache.has(url)) {
    const loading = fetch(url).then((response) => {
      if (!response.ok) throw new Error(`${url} did not load (HTTP ${response.status})`);
      return response.arrayBuffer();
    }).then(read);
    loading.catch(() => cache.delete(url));
    cache.set(url, loading);
  }
  return cache.get(url);
}

// The map's points (ae_core.store.points_blob): a framed JSON header naming each array's
// offset and dtype and the count, then the arrays. Each set is fetched and read once.
const pointSets = new Map(); // points URL -> Promise of its arrays

function readPoints(buffer) {
  const { header, start } = readFramed(buffer);
  const types = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array };
  const points = { count: header.count };
  for (const [name, spec] of Object.entries(header.arrays)) {
    points[name] = new types[spec.dtype](buffer, start + spec.offset, header.count);
  }
  return points;
}

function pointsAt(url) {
  return fetchAsset(url, pointSets, readPoints);
}

const decoders = new Map(); // bundle URL -> Promise of its decoder: each model is read and checked once.
function decoderAt(url) {
  return fetchAsset(url, decoders, (buffer) => {
    const decoder = createDecoder(buffer);
    decoder.selfCheck();
    return decoder;
  });
}

// A decoded image and the line under it, as every view shows them: the canvas becomes
// view[canvasPart] and the line view[readoutPart].
function digitHTML(label, canvasPart = "canvas", readoutPart = "readout", readout = "") {
  return `
    <div class="live">
      <canvas class="digit" data-part="${canvasPart}" width="28" height="28" aria-label="${label}"></canvas>
      <div class="readout" data-part="${readoutPart}">${readout}</div>
    </div>`;
}

const views = new WeakMap(); // parentElement -> that view's state

// The start of every view: its settings and its state, whose DOM is built once per element
// from `html` (each element with a data-part attribute becomes view[part], and `bind(view)`
// adds the listeners). `start(settings, view)` runs once the decoder is ready, with
// view.decoder set, unless newer settings came meanwhile; a browser that cannot decode shows
// why instead.
function mountView({ data, parentElement, setStateValue }, html, bind, start) {
  const settings = openEnvelope(data);
  let view = views.get(parentElement);
  if (!view) {
    const root = document.createElement("div"); // Beside Streamlit's <style>, not over it.
    root.innerHTML = html;
    parentElement.appendChild(root);
    view = { root };
    for (const part of root.querySelectorAll("[data-part]")) view[part.dataset.part] = part;
    views.set(parentElement, view);
    if (bind) bind(view);
  }
  view.settings = settings;
  decoderAt(settings.decoder).then((decoder) => {
    if (view.settings !== settings || view.failed) return;
    view.decoder = decoder;
    start(settings, view);
  }, (error) => {
    view.failed = true;
    showFailure(view.root, error, setStateValue);
  });
  return { settings, view };
}

// Press, drag and let go on `element`: `move(event)` on the press and every move while
// pressed, `release(event)` once when let go. The pointer is captured, so a drag that
// leaves the element goes on.
function dragOn(element, move, release) {
  let pressed = false;
  element.addEventListener("pointerdown", (event) => {
    pressed = true;
    element.setPointerCapture(event.pointerId);
    element.focus({ focusVisible: false }); // The arrow keys work from here; the ring is for keyboards.
    move(event);
  });
  element.addEventListener("pointermove", (event) => { if (pressed) move(event); });
  for (const name of ["pointerup", "pointercancel"]) {
    element.addEventListener(name, (event) => {
      if (!pressed) return;
      pressed = false;
      release(event);
    });
  }
  return () => pressed;
}

// Grey pixels in [0, 1] onto a 28x28 canvas, which CSS enlarges with square pixels.
function paintDigit(canvas, pixels) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const grey = pixels[i] * 255;
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = grey;
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

// Decode at most once per animation frame, whatever the rate of pointer events: `request`
// records the latest point and the time of its event; `draw(point)` runs in the next frame.
// The canvas keeps how many frames it drew and how long the last took from the input event
// to its finished paint call, which the tests and the benchmark read.
function frameScheduler(canvas, draw) {
  let pending = null;
  let scheduled = false;
  canvas.dataset.frames ??= "0"; // Counted across Streamlit's reruns of the view.
  return function request(point, eventTime = performance.now()) {
    pending = { point, eventTime };
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      draw(pending.point);
      canvas.dataset.z = JSON.stringify(pending.point);
      canvas.dataset.frames = String(Number(canvas.dataset.frames) + 1);
      canvas.dataset.latencyMs = (performance.now() - pending.eventTime).toFixed(2);
    });
  };
}

function formatZ(z) {
  return `(${z.map((value) => value.toFixed(2)).join(", ")})`;
}

// The one line a page shows when this browser cannot decode; the server's images remain.
function showFailure(root, error, setStateValue) {
  const line = document.createElement("p");
  line.className = "failure";
  line.textContent = `Live decoding is off in this browser (${error.message || error}); ` +
    "the images on this page are decoded on the server instead.";
  root.replaceChildren(line);
  setStateValue("failed", String(error.message || error));
}
