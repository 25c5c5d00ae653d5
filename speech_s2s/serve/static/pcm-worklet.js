// The capture end of the caption page: an AudioWorklet that turns the microphone's float samples at the
// AudioContext's rate (48 kHz on most machines) into 16 kHz signed 16-bit PCM and posts it to the page
// in 50 ms chunks. Loaded twice: by AudioWorklet.addModule (registers the processor) and, in the tests,
// as a plain script (only exposes PcmDownsampler, to check the filter).
'use strict';

// The low-pass filter, a Kaiser-windowed sinc. Measured response, 48 kHz in: flat (-0.0 dB) to 7.4 kHz,
// -6 dB at 7.8 kHz, -21 dB at 8 kHz, below -75 dB from 8.2 kHz on. So nothing above 8.2 kHz folds
// back, the little between 8 and 8.2 kHz lands above 7.8 kHz, and the speech band is kept as the
// model's training audio has it (sox resamples it flat to about 7.6 kHz).
// Half-amplitude point as a fraction of the output's Nyquist frequency (7.8 kHz at 16 kHz).
const CUTOFF = 0.975;
// Half the kernel's length in output sample periods: 132 input samples each side at 48 kHz; the
// transition band narrows as this grows (264 multiply-adds per output sample).
const HALF_WIDTH = 44;
// Kaiser window shape: about 70 dB of stop-band attenuation.
const KAISER_BETA = 6.76;
// Rates whose ratio has more distinct fractional phases than this use the nearest of this many.
const MAX_PHASES = 1024;

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

// Modified Bessel function of the first kind, order 0 (its power series), for the Kaiser window.
function besselI0(x) {
  let sum = 1, term = 1;
  for (let k = 1; term > 1e-12 * sum; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
  }
  return sum;
}

// Windowed-sinc resampler from inRate down to outRate (outRate <= inRate): each output sample is the
// input convolved with a Kaiser-windowed sinc low-pass centred on the output's exact (fractional)
// position, so any ratio works (48k -> 16k has one phase, 44.1k -> 16k 160). Samples before the first
// are taken as zeros. Pure arithmetic, no Web Audio: testable in a page.
class PcmDownsampler {
  constructor(inRate, outRate) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.passThrough = inRate === outRate;
    const ratio = inRate / outRate;
    const cutoff = (CUTOFF * 0.5) / ratio; // cycles per input sample
    this.half = this.passThrough ? 1 : Math.ceil(HALF_WIDTH * ratio);
    this.phases = Math.min(outRate / gcd(inRate, outRate), MAX_PHASES);
    // kernels[p][j] weighs input sample (i - half + 1 + j) for an output at position i + p / phases.
    const taps = 2 * this.half;
    this.kernels = [];
    for (let p = 0; p < this.phases && !this.passThrough; p++) {
      const kernel = new Float32Array(taps);
      let sum = 0;
      for (let j = 0; j < taps; j++) {
        const u = p / this.phases + this.half - 1 - j; // distance from the output's position
        const x = 2 * cutoff * u;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const edge = u / this.half;
        const window = Math.abs(edge) < 1 ? besselI0(KAISER_BETA * Math.sqrt(1 - edge * edge)) / besselI0(KAISER_BETA) : 0;
        kernel[j] = sinc * window;
        sum += kernel[j];
      }
      for (let j = 0; j < taps; j++) kernel[j] /= sum; // unity gain at 0 Hz whatever the phase
      this.kernels.push(kernel);
    }
    // History: the input samples an output still needs. buffer[0] is input sample number `bufferStart`.
    this.buffer = new Float32Array(taps + 4096);
    this.bufferStart = -(this.half - 1); // leading zeros stand for the silence before the first sample
    this.bufferLength = this.half - 1;
    // The next output's position in input samples: `nextIndex + nextNumerator / outRate`, kept exact.
    this.nextIndex = 0;
    this.nextNumerator = 0;
  }

  // Feeds input samples (Float32Array, -1..1); calls emit(value) for each output sample now computable.
  push(input, emit) {
    if (this.passThrough) {
      for (let i = 0; i < input.length; i++) emit(input[i]);
      return;
    }
    if (this.bufferLength + input.length > this.buffer.length) {
      // Drop what no output needs any more; grow only if a caller pushes huge blocks.
      const keepFrom = Math.max(0, this.nextIndex - this.half + 1 - this.bufferStart);
      this.buffer.copyWithin(0, keepFrom, this.bufferLength);
      this.bufferStart += keepFrom;
      this.bufferLength -= keepFrom;
      if (this.bufferLength + input.length > this.buffer.length) {
        const bigger = new Float32Array(2 * (this.bufferLength + input.length));
        bigger.set(this.buffer.subarray(0, this.bufferLength));
        this.buffer = bigger;
      }
    }
    this.buffer.set(input, this.bufferLength);
    this.bufferLength += input.length;
    const last = this.bufferStart + this.bufferLength - 1; // newest input sample's number
    const taps = 2 * this.half;
    // One sample to spare: a phase rounded up to the next whole sample reads one further.
    while (this.nextIndex + this.half + 1 <= last) {
      const phase = Math.round((this.nextNumerator / this.outRate) * this.phases);
      // Rounding up to a whole sample (only when phases are quantised) uses phase 0 of the next one.
      const index = this.nextIndex + (phase === this.phases ? 1 : 0);
      const kernel = this.kernels[phase % this.phases];
      const first = index - this.half + 1 - this.bufferStart;
      let value = 0;
      for (let j = 0; j < taps; j++) value += kernel[j] * this.buffer[first + j];
      emit(value);
      this.nextNumerator += this.inRate;
      this.nextIndex += Math.floor(this.nextNumerator / this.outRate);
      this.nextNumerator %= this.outRate;
    }
  }
}

// Float (-1..1) to signed 16-bit with clipping: a too-loud microphone saturates instead of wrapping round.
function toInt16(value) {
  const scaled = Math.round(value * 32768);
  return scaled > 32767 ? 32767 : scaled < -32768 ? -32768 : scaled;
}

globalThis.PcmDownsampler = PcmDownsampler;
globalThis.pcmToInt16 = toInt16;

if (typeof registerProcessor === 'function') {
  // Posts {pcm: ArrayBuffer of s16le samples, samples: total output samples so far} every chunk;
  // on {flush: true} posts the partial chunk, then {flushed: true}.
  class PcmProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const { outRate, chunkSeconds } = options.processorOptions;
      this.downsampler = new PcmDownsampler(sampleRate, outRate); // sampleRate: the AudioContext's
      this.chunk = new Int16Array(Math.round(outRate * chunkSeconds));
      this.filled = 0;
      this.total = 0; // output samples produced: the page's audio clock
      this.mono = new Float32Array(128);
      this.emit = (value) => {
        this.chunk[this.filled++] = toInt16(value);
        this.total++;
        if (this.filled === this.chunk.length) this.post();
      };
      this.port.onmessage = (event) => {
        if (event.data.flush) {
          this.post();
          this.port.postMessage({ flushed: true });
        }
      };
    }

    post() {
      if (this.filled === 0) return;
      const pcm = this.chunk.slice(0, this.filled).buffer; // a copy, transferred: the chunk is reused
      this.port.postMessage({ pcm, samples: this.total }, [pcm]);
      this.filled = 0;
    }

    process(inputs) {
      const channels = inputs[0];
      if (channels && channels.length > 0) {
        let mono = channels[0];
        if (channels.length > 1) {
          // A stereo microphone: the mean of its channels.
          if (this.mono.length !== mono.length) this.mono = new Float32Array(mono.length);
          this.mono.fill(0);
          for (const channel of channels) for (let i = 0; i < channel.length; i++) this.mono[i] += channel[i] / channels.length;
          mono = this.mono;
        }
        this.downsampler.push(mono, this.emit);
      }
      return true; // keep running until the page disconnects the node
    }
  }
  registerProcessor('pcm-processor', PcmProcessor);
}
