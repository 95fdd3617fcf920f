// What every live view shares: its data, its decoder, its digit, and the way it fails.
//
// A view's data is an envelope of bytes (ui/live.py): a 4-byte length, the view's settings
// as JSON, then the decoder bundle. Streamlit runs a view again on the same element each
// time its data changes, without the previous cleanup, so a view keeps its own state per
// element in `views` and builds its DOM only once.

function openEnvelope(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const length = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  const settings = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length)));
  return { settings, bundle: bytes.subarray(4 + length) };
}

const decoders = new Map(); // bundle id -> decoder: each model is read and checked once.
function decoderFor(bundle) {
  const headerLength = new DataView(bundle.buffer, bundle.byteOffset, 4).getUint32(0, true);
  const { id } = JSON.parse(new TextDecoder().decode(bundle.subarray(4, 4 + headerLength)));
  if (!decoders.has(id)) {
    const decoder = createDecoder(bundle);
    decoder.selfCheck();
    decoders.set(id, decoder);
  }
  return decoders.get(id);
}

const views = new WeakMap(); // parentElement -> that view's state

// The start of every view: its settings, and its state with the decoder, or null when this
// browser cannot decode (the view then shows why). The DOM is built once per element from
// `html`: each element with a data-part attribute becomes view[part], and `bind(view)` adds
// the listeners.
function mountView({ data, parentElement, setStateValue }, html, bind) {
  const { settings, bundle } = openEnvelope(data);
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
  try {
    view.decoder = decoderFor(bundle);
  } catch (error) {
    showFailure(view.root, error, setStateValue);
    return null;
  }
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
