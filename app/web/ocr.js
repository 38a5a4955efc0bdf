// The transcription page: upload, stream the guard's events live, correct the result.
"use strict";

const state = { file: null, requestId: null, events: [] };
window.ocrguardEvents = state.events; // the order events arrived in (read by the browser test)

function choose(file) {
  state.file = file;
  document.getElementById("chosen").textContent = `${file.name} (${Math.round(file.size / 1024)} KB)`;
  document.getElementById("go").disabled = false;
}

function setUpUpload(info) {
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  drop.addEventListener("click", () => input.click());
  input.addEventListener("change", () => input.files[0] && choose(input.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) choose(e.dataTransfer.files[0]);
  });
  const samples = document.getElementById("samples");
  for (const name of info.samples) {
    const button = document.createElement("button");
    button.className = "secondary";
    button.textContent = name;
    button.addEventListener("click", async () => {
      const blob = await (await fetch(`/samples/${name}`)).blob();
      choose(new File([blob], name, { type: blob.type }));
    });
    samples.append(button);
  }
}

// One box per attempt; a resumed attempt starts from the text it keeps.
function attemptBox(page, attempt, kept = "") {
  const id = `attempt-${page}-${attempt}`;
  let box = document.getElementById(id);
  if (!box) {
    box = document.createElement("div");
    box.id = id;
    box.innerHTML = `<div class="note">page ${page}, attempt ${attempt}</div><pre class="live"></pre><div class="events"></div>`;
    box.dataset.text = kept;
    box.querySelector("pre").textContent = kept;
    document.getElementById("attempts").append(box);
  }
  return box;
}

function onDelta(data) {
  const box = attemptBox(data.page, data.attempt, state.kept || "");
  state.kept = "";
  box.dataset.text += data.text;
  box.querySelector("pre").textContent = box.dataset.text;
}

function onGuard(data) {
  const box = attemptBox(data.page, data.attempt);
  const v = data.verdict;
  markedText(box.querySelector("pre"), box.dataset.text, data.onset_chars, data.repeat_chars);
  const line = document.createElement("div");
  line.className = "event";
  line.textContent = `guard: ${v.kind}, period ${v.period} tokens, ${v.repeats} copies from token ${v.onset} → ${data.action}`;
  box.querySelector(".events").append(line);
  // after a rewind the next attempt continues from the kept text
  state.kept = data.action === "resume" ? box.dataset.text.slice(0, data.keep_chars) : "";
}

function onPage(page) {
  const panel = document.getElementById("result-panel");
  panel.classList.remove("hidden");
  const box = document.createElement("form");
  box.className = "page";
  box.dataset.page = page.page;
  const guard = page.guard;
  const summary = guard.tripped
    ? `guard ${guard.outcome}: ${guard.kind}, period ${guard.period}, ${guard.attempts.length} attempt(s), ${guard.tokens_saved} tokens saved`
    : `guard: no loop (${guard.tokens_generated} tokens)`;
  box.innerHTML = `<h3>Page ${page.page}</h3><div class="note guard-summary"></div>`;
  box.querySelector(".guard-summary").textContent = summary + (page.valid_json ? "" : " · the output is not the JSON schema");
  for (const field of ["header", "margin", "footer", "text"]) {
    const label = document.createElement("label");
    label.className = "field";
    label.textContent = field;
    const area = document.createElement("textarea");
    area.name = field;
    area.rows = field === "text" ? 8 : 2;
    area.value = page[field] ?? (field === "text" ? page.raw_text : "");
    label.append(area);
    box.append(label);
  }
  const row = document.createElement("div");
  row.className = "row";
  row.innerHTML = `<button type="submit">Send correction</button><span class="status"></span>`;
  box.append(row);
  box.addEventListener("submit", (e) => { e.preventDefault(); sendCorrection(box); });
  document.getElementById("pages").append(box);
}

async function sendCorrection(form) {
  const status = form.querySelector(".status");
  const body = { page: Number(form.dataset.page) };
  for (const field of ["header", "margin", "footer", "text"]) body[field] = form.elements[field].value;
  if (state.file && state.file.type.startsWith("image/")) body.image = await fileToBase64(state.file);
  try {
    const stored = await requestJSON(`/v1/ocr/${state.requestId}/feedback`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    status.className = "status ok";
    status.textContent = `correction stored${stored.with_image ? " with the page image" : ""}: it will be the chosen side of a DPO pair`;
  } catch (error) {
    status.className = "status bad";
    status.textContent = `not stored: ${error.message}`;
  }
}

// Server-Sent Events over a POST: fetch's body stream, split on blank lines.
async function transcribe() {
  const status = document.getElementById("status");
  const go = document.getElementById("go");
  document.getElementById("attempts").replaceChildren();
  document.getElementById("pages").replaceChildren();
  document.getElementById("result-panel").classList.add("hidden");
  document.getElementById("live-panel").classList.remove("hidden");
  state.events.length = 0;
  go.disabled = true;
  status.className = "status";
  status.textContent = "transcribing…";
  const form = new FormData();
  form.append("file", state.file);
  form.append("stream", "true");
  form.append("guard", document.getElementById("mode").value);
  try {
    const response = await fetch("/v1/ocr", { method: "POST", body: form, headers: authHeaders() });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : `${response.status}`);
    }
    state.requestId = response.headers.get("X-Request-Id");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        handle(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
    status.className = "status ok";
    status.textContent = `done · request ${state.requestId}`;
  } catch (error) {
    status.className = "status bad";
    status.textContent = `failed: ${error.message}`;
  } finally {
    go.disabled = false;
  }
}

function handle(block) {
  let name = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) name = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  const payload = JSON.parse(data);
  state.events.push(name);
  if (name === "delta") onDelta(payload);
  else if (name === "guard") onGuard(payload);
  else if (name === "page") onPage(payload);
  else if (name === "error") throw new Error(payload.message);
}

loadInfo().then((info) => {
  setUpUpload(info);
  document.getElementById("go").addEventListener("click", transcribe);
}).catch((error) => {
  document.getElementById("status").textContent = `cannot reach the server: ${error.message}`;
});
