// Live captions in the browser: microphone -> AudioWorklet (16 kHz signed 16-bit PCM) -> WebSocket /ws ->
// partial and final text. The server speaks the JSON of `speech-s2s stream --output-format jsonl`.
'use strict';

const TARGET_RATE = 16000; // the model's rate: the worklet downsamples to it, so the server need not
const CHUNK_SECONDS = 0.05; // audio per WebSocket frame: small enough not to delay the endpoint
const PENDING_SECONDS = 5; // audio kept while (re)connecting and sent once the socket opens; older is dropped
const BACKOFF_FIRST_SECONDS = 1; // after a lost connection: 1, 2, 4, 8, 10, 10... seconds
const BACKOFF_MAX_SECONDS = 10;
const SERVER_FULL_RETRY_SECONDS = 5;
const FINISH_TIMEOUT_MS = 15000; // after Stop, the server's time to send the last finals and close
const CAPTION_LINE_CHARACTERS = 42; // srt/vtt lines, the usual broadcast limit

const params = new URLSearchParams(location.search);
const OVERLAY = params.get('view') === 'overlay';
const TOKEN = params.get('token');

// Every event as it arrived, for measurement (tools/bench_serve_browser.py). start/end are on the page's
// audio clock (seconds of audio captured since the page loaded: the server's own times, when one
// connection has carried it all); audioSeconds is that clock when the event arrived.
window.captionLog = [];

const page = {
  running: false, // between Start and Stop (or an error that ends it)
  socket: null,
  connectedOnce: false, // some socket has opened since Start: a failure is then a lost connection
  audio: null, // {context, stream, source, node} once the microphone runs
  rate: TARGET_RATE, // of the PCM sent
  captured: 0, // samples captured since the page loaded (while started): the audio clock
  pending: [], // [{pcm, position}] captured while no socket was open
  streamOffset: 0, // the audio clock (samples) at the first sample of the current connection
  finals: [], // {text, start, end}, seconds on the audio clock
  backoff: BACKOFF_FIRST_SECONDS,
  retryTimer: null,
  finishTimer: null,
};

const $ = (id) => document.getElementById(id);

function setStatus(state, message) {
  const status = $('status');
  status.dataset.state = state; // a stable hook for scripts and CSS
  status.textContent = message;
  $('start').disabled = page.running || page.finishTimer !== null;
  $('stop').disabled = !page.running;
}

// ---- Text: the partial line and the transcript ----

function formatClock(seconds, separator) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n, width) => String(n).padStart(width, '0');
  return `${pad(Math.floor(ms / 3600000), 2)}:${pad(Math.floor(ms / 60000) % 60, 2)}:${pad(Math.floor(ms / 1000) % 60, 2)}${separator}${pad(ms % 1000, 3)}`;
}

function shortClock(seconds) {
  const tenths = Math.max(0, Math.round(seconds * 10));
  return `${Math.floor(tenths / 600)}:${String(Math.floor(tenths / 10) % 60).padStart(2, '0')}.${tenths % 10}`;
}

function showPartial(text, committed) {
  // The committed words will not change: shown as settled text, the newest guess in grey after them.
  const settled = committed && text.startsWith(committed) ? committed : '';
  $('partial-committed').textContent = settled;
  $('partial-guess').textContent = text.slice(settled.length);
}

function addFinal(text, start, end) {
  page.finals.push({ text, start, end });
  const transcript = $('transcript');
  const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
  const line = document.createElement('p');
  line.className = 'final';
  line.dataset.time = shortClock(start); // shown by CSS, so the element's text is the final's text alone
  line.dataset.start = start.toFixed(2);
  line.dataset.end = end.toFixed(2);
  line.title = `${shortClock(start)} - ${shortClock(end)}`;
  line.textContent = text;
  $('finals').appendChild(line);
  if (atBottom) transcript.scrollTop = transcript.scrollHeight; // follow, unless the reader scrolled up
  for (const format of ['txt', 'srt', 'vtt']) $(`download-${format}`).disabled = false;
}

function onServerEvent(event) {
  const clock = page.captured / page.rate;
  const offset = page.streamOffset / page.rate; // the server counts from this connection's first sample
  const entry = { type: event.type, text: event.text, start: event.start + offset, end: event.end + offset,
    receivedAt: performance.now(), audioSeconds: clock, committed: event.committed, latencyMs: event.latency_ms };
  window.captionLog.push(entry);
  if (event.type === 'partial') {
    showPartial(event.text, event.committed || '');
  } else if (event.type === 'final') {
    showPartial('', '');
    if (event.text) addFinal(event.text, entry.start, entry.end); // "" only says the partial was not speech
  }
}

// ---- Downloads ----

function wrapLines(text, width) {
  const lines = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines.join('\n');
}

function buildTxt(finals) {
  return finals.map((f) => `${f.text}\n`).join('');
}

function buildSrt(finals) {
  return finals.map((f, i) => `${i + 1}\n${formatClock(f.start, ',')} --> ${formatClock(f.end, ',')}\n${wrapLines(f.text, CAPTION_LINE_CHARACTERS)}\n\n`).join('');
}

function buildVtt(finals) {
  // Cue text may not hold a raw "<" or "&" (they start tags and entities); ">" too, after "-->".
  const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return 'WEBVTT\n\n' + finals.map((f) => `${formatClock(f.start, '.')} --> ${formatClock(f.end, '.')}\n${escape(wrapLines(f.text, CAPTION_LINE_CHARACTERS))}\n\n`).join('');
}

const BUILDERS = { txt: [buildTxt, 'text/plain'], srt: [buildSrt, 'application/x-subrip'], vtt: [buildVtt, 'text/vtt'] };

function download(format) {
  const [build, type] = BUILDERS[format];
  const url = URL.createObjectURL(new Blob([build(page.finals)], { type: `${type};charset=utf-8` }));
  const link = document.createElement('a');
  link.href = url;
  link.download = `captions-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}.${format}`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- Audio ----

function onChunk(message) {
  if (message.flushed) {
    finishAfterFlush();
    return;
  }
  const samples = message.pcm.byteLength / 2;
  const position = page.captured;
  page.captured += samples;
  const socket = page.socket;
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(message.pcm);
  } else {
    page.pending.push({ pcm: message.pcm, position });
    const keep = Math.ceil(PENDING_SECONDS / CHUNK_SECONDS);
    if (page.pending.length > keep) page.pending.splice(0, page.pending.length - keep);
  }
}

async function startMicrophone() {
  const context = page.audio.context;
  await context.audioWorklet.addModule('pcm-worklet.js');
  // No echo cancellation, noise suppression or gain control: the server levels the audio itself, and
  // the processing's artefacts cost the model more than they save.
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  if (!page.running || page.audio?.context !== context) {
    stream.getTracks().forEach((track) => track.stop()); // stopped while the permission prompt was open
    return;
  }
  const source = context.createMediaStreamSource(stream);
  // No outputs: nothing is played back; Chrome and Firefox still run a node that has no outputs.
  const node = new AudioWorkletNode(context, 'pcm-processor', {
    numberOfInputs: 1, numberOfOutputs: 0, processorOptions: { outRate: page.rate, chunkSeconds: CHUNK_SECONDS },
  });
  node.port.onmessage = (event) => onChunk(event.data);
  source.connect(node);
  Object.assign(page.audio, { stream, source, node });
  await context.resume();
}

function stopMicrophone() {
  const audio = page.audio;
  page.audio = null;
  if (!audio) return;
  audio.stream?.getTracks().forEach((track) => track.stop());
  audio.source?.disconnect();
  audio.node?.port.close();
  audio.context.close().catch(() => {});
}

function microphoneError(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'no microphone permission: allow the microphone for this site, then press Start';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'no microphone found';
    case 'NotReadableError':
    case 'AbortError':
      return 'the microphone could not be opened (is another program using it?)';
    default:
      return `the microphone failed: ${error && error.message ? error.message : error}`;
  }
}

// ---- Connection ----

function socketUrl() {
  const url = new URL('ws', location.href); // relative: the page's own host, port and folder
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = `?rate=${page.rate}` + (TOKEN !== null ? `&token=${encodeURIComponent(TOKEN)}` : '');
  return url.href;
}

function connect() {
  page.retryTimer = null;
  const socket = new WebSocket(socketUrl());
  socket.binaryType = 'arraybuffer';
  page.socket = socket;
  setStatus('connecting', 'connecting to the server…');
  socket.onopen = () => onOpen(socket);
  socket.onmessage = (event) => {
    if (socket === page.socket && typeof event.data === 'string') onServerEvent(JSON.parse(event.data));
  };
  socket.onclose = (event) => onClose(socket, event);
}

function onOpen(socket) {
  if (socket !== page.socket) return;
  page.connectedOnce = true;
  page.backoff = BACKOFF_FIRST_SECONDS;
  // The new stream starts with the oldest audio kept while there was no connection.
  page.streamOffset = page.pending.length ? page.pending[0].position : page.captured;
  for (const chunk of page.pending) socket.send(chunk.pcm);
  page.pending = [];
  if (page.audio.node) {
    setStatus('listening', 'listening');
    return;
  }
  setStatus('starting', 'asking for the microphone…');
  if (page.audio.starting) return; // a reconnection while the permission prompt is still open
  // The microphone is asked for only once the server has accepted: a wrong token or a full server
  // closes the socket at once, before any audio exists to send.
  page.audio.starting = true;
  const audio = page.audio;
  startMicrophone().then(() => {
    if (page.running && page.socket === socket && socket.readyState === WebSocket.OPEN) setStatus('listening', 'listening');
  }, (error) => {
    // Closing the audio context (the server refused us meanwhile, or Stop) fails its start too: not news.
    if (page.running && page.audio === audio) stopEverything('error', microphoneError(error));
  });
}

function retryIn(seconds, message) {
  setStatus('reconnecting', `${message}, trying again in ${seconds} s…`);
  page.retryTimer = setTimeout(connect, seconds * 1000);
}

function onClose(socket, event) {
  if (socket !== page.socket) return;
  page.socket = null;
  showPartial('', ''); // the open utterance went with the connection
  const reason = event.reason || '';
  if (page.finishTimer !== null || !page.running) {
    stopEverything('stopped', event.code === 1000 || event.code === 1005 ? 'stopped' : `stopped (${closeMessage(event.code, reason)})`);
  } else if (reason.startsWith('unauthorized')) {
    // Trying again cannot help: the address must change.
    stopEverything('error', TOKEN === null
      ? 'missing token: this server needs one; open the page as …/?token=YOUR-TOKEN (unauthorized)'
      : "wrong token: the server refused it; check the ?token= in the page's address (unauthorized)");
  } else if (event.code === 1013) {
    const detail = reason.replace(/^server full\W*/, '');
    retryIn(SERVER_FULL_RETRY_SECONDS, `the server is full${detail ? ` (${detail})` : ''}`);
  } else if (event.code === 1006 || event.code === 1012) {
    // No close frame: the network or the server went away; a restarted server takes us back.
    const seconds = page.backoff;
    page.backoff = Math.min(2 * page.backoff, BACKOFF_MAX_SECONDS);
    retryIn(seconds, page.connectedOnce ? 'connection lost' : 'cannot reach the server');
  } else {
    stopEverything('error', closeMessage(event.code, reason));
  }
}

function closeMessage(code, reason) {
  if (code === 1000) return 'the server ended the stream';
  if (code === 1001) return reason.startsWith('server shutting down') ? 'the server is shutting down' : `the server closed the connection: ${reason || 'going away'}`;
  if (code === 1003 || code === 1007 || code === 1009) return `protocol error ${code} (a bug in this page): ${reason}`;
  if (code === 1011) return `the server failed: ${reason || 'internal error'}`;
  return `connection closed (${code}${reason ? `: ${reason}` : ''})`;
}

// ---- Start and stop ----

function start() {
  if (page.running) return;
  if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
    setStatus('error', 'the microphone needs a secure page: open it over https, or on localhost or 127.0.0.1');
    return;
  }
  let context;
  try {
    context = new AudioContext({ latencyHint: 'interactive' }); // made in the click, so that autoplay rules let it run
  } catch (error) {
    setStatus('error', `this browser cannot process audio here: ${error.message}`);
    return;
  }
  page.audio = { context };
  page.rate = Math.min(TARGET_RATE, Math.round(context.sampleRate)); // a rarer rate below 16 kHz goes as it is
  // The audio clock runs on from the last Start: a transcript of several runs keeps its times in order.
  Object.assign(page, { running: true, pending: [], backoff: BACKOFF_FIRST_SECONDS, connectedOnce: false });
  connect();
}

function stop() {
  if (!page.running) return;
  page.running = false;
  const socket = page.socket;
  if (socket && socket.readyState === WebSocket.OPEN && page.audio && page.audio.node) {
    // Send the last partial chunk, then ask for the last finals; the server closes with 1000.
    setStatus('finishing', 'finishing…');
    page.finishTimer = setTimeout(() => stopEverything('stopped', 'stopped (the server did not finish in time)'), FINISH_TIMEOUT_MS);
    page.audio.node.port.postMessage({ flush: true });
  } else {
    stopEverything('stopped', 'stopped');
  }
}

function finishAfterFlush() {
  stopMicrophone();
  const socket = page.socket;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ eof: true }));
  else stopEverything('stopped', 'stopped');
}

function stopEverything(state, message) {
  page.running = false;
  clearTimeout(page.retryTimer);
  clearTimeout(page.finishTimer);
  page.retryTimer = page.finishTimer = null;
  stopMicrophone();
  const socket = page.socket;
  page.socket = null;
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  showPartial('', '');
  setStatus(state, message);
}

// ---- Page ----

function init() {
  if (OVERLAY) document.body.classList.add('overlay');
  $('start').addEventListener('click', start);
  $('stop').addEventListener('click', stop);
  for (const format of Object.keys(BUILDERS)) $(`download-${format}`).addEventListener('click', () => download(format));
  setStatus('idle', 'press Start to caption the microphone');
  if (OVERLAY) {
    // An OBS browser source cannot click: start at once. In a browser that wants a gesture first, the
    // audio context waits suspended, and a click anywhere resumes it.
    start();
    document.addEventListener('click', () => page.audio && page.audio.context.resume(), { once: true });
  }
}

// For scripts and tests: the builders and the state, read-only in spirit.
window.captions = {
  start, stop, buildTxt, buildSrt, buildVtt,
  get finals() { return page.finals.slice(); },
  get audioSeconds() { return page.captured / page.rate; }, // the audio clock: seconds captured so far
};

init();
