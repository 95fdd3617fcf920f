// The autoencoder's decoder in plain JavaScript, for decoding at the pointer every frame.
//
// It reads the bundle that ae_core/export.py writes and runs Keras's arithmetic on it:
// Dense + ReLU, Reshape (7, 7, 64), Conv 64 + ReLU, UpSampling x2, Conv 32 + ReLU,
// UpSampling x2, Conv 1 + sigmoid. Each upsampling is folded into the convolution after it
// (a pixel of the upsampled grid is read from its source pixel), so it costs nothing.
//
//   const decoder = createDecoder(bytes);      // bytes: the bundle, a Uint8Array
//   const pixels = decoder.decode([1.5, -2]);  // Float32Array(784), row by row, in [0, 1]
//
// This file is a classic script as well as the start of each view's module: the views
// append their own code and `export default`.

// The layout of ae_core/framing.py: a 4-byte length, a JSON header, then the payload from
// `start`, a 4-byte boundary. `buffer` is an ArrayBuffer that the payload begins in.
function readFramed(buffer) {
  const headerLength = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerLength)));
  return { header, start: Math.ceil((4 + headerLength) / 4) * 4 };
}

function readBundle(bytes) {
  // Streamlit hands bytes over as a view into a larger buffer, at any offset: copy them,
  // so that the float arrays below start on a 4-byte boundary.
  const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.slice().buffer;
  const { header, start } = readFramed(buffer);
  const arrays = {};
  for (const [name, spec] of Object.entries(header.arrays)) {
    const length = spec.shape.reduce((a, b) => a * b, 1);
    arrays[name] = new Float32Array(buffer, start + spec.offset, length);
  }
  return { header, arrays };
}

// One 3x3 'same' convolution over an (h, w, inC) input, optionally read through a 2x
// upsampling, into a (size, size, outC) output; Keras's kernel layout (ky, kx, in, out).
function convolve(input, inWidth, inChannels, kernel, bias, outChannels, size, upsample,
                  activation, output, sums) {
  const shift = upsample ? 1 : 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      sums.set(bias);
      for (let ky = 0; ky < 3; ky++) {
        const uy = y + ky - 1;
        if (uy < 0 || uy >= size) continue;
        const rowBase = (uy >> shift) * inWidth;
        for (let kx = 0; kx < 3; kx++) {
          const ux = x + kx - 1;
          if (ux < 0 || ux >= size) continue;
          const inBase = (rowBase + (ux >> shift)) * inChannels;
          const kernelBase = (ky * 3 + kx) * inChannels * outChannels;
          for (let c = 0; c < inChannels; c++) {
            const value = input[inBase + c];
            if (value === 0) continue; // After a ReLU most inputs are 0.
            const row = kernelBase + c * outChannels;
            for (let o = 0; o < outChannels; o++) sums[o] += value * kernel[row + o];
          }
        }
      }
      const outBase = (y * size + x) * outChannels;
      for (let o = 0; o < outChannels; o++) output[outBase + o] = activation(sums[o]);
    }
  }
}

const relu = (v) => (v > 0 ? v : 0);
const sigmoid = (v) => 1 / (1 + Math.exp(-v));

function createDecoder(bytes) {
  const { header, arrays } = readBundle(bytes);
  if (header.format !== 1) throw new Error(`unknown bundle format ${header.format}`);
  const latentDim = header.latent_dim;
  const dense = new Float32Array(7 * 7 * 64);
  const first = new Float32Array(7 * 7 * 64);
  const second = new Float32Array(14 * 14 * 32);
  const sums = new Float64Array(64);
  const denseKernel = arrays["dense/kernel"], denseBias = arrays["dense/bias"];

  function decode(z, pixels = new Float32Array(28 * 28)) {
    for (let j = 0; j < dense.length; j++) {
      let sum = denseBias[j];
      for (let i = 0; i < latentDim; i++) sum += z[i] * denseKernel[i * dense.length + j];
      dense[j] = sum > 0 ? sum : 0;
    }
    convolve(dense, 7, 64, arrays["conv1/kernel"], arrays["conv1/bias"], 64, 7, false, relu, first,
             sums.subarray(0, 64));
    convolve(first, 7, 64, arrays["conv2/kernel"], arrays["conv2/bias"], 32, 14, true, relu, second,
             sums.subarray(0, 32));
    convolve(second, 14, 32, arrays["output/kernel"], arrays["output/bias"], 1, 28, true, sigmoid, pixels,
             sums.subarray(0, 1));
    return pixels;
  }

  // Before the page relies on it, reproduce the image Keras decoded from the check code.
  function selfCheck() {
    const pixels = decode(header.check.code);
    const expected = arrays["check/image"];
    let worst = 0;
    for (let i = 0; i < pixels.length; i++) worst = Math.max(worst, Math.abs(pixels[i] - expected[i]));
    if (!(worst <= 1e-4)) throw new Error(`it draws the check image ${worst.toExponential(1)} off Keras's`);
  }

  return { id: header.id, latentDim, decode, selfCheck };
}
