// Shared by both pages: the API key (when the server asks for one) and JSON requests.
"use strict";

const KEY = "ocrguard-api-key";

function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// Show the key box when the server requires a key; keep what is typed for this tab.
function setUpKeyBox(info) {
  const box = document.getElementById("keybox");
  if (!info.auth_required) return;
  box.classList.add("needed");
  const input = box.querySelector("input");
  input.value = apiKey();
  input.addEventListener("change", () => sessionStorage.setItem(KEY, input.value.trim()));
}

async function requestJSON(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function loadInfo() {
  const info = await requestJSON("/v1/info");
  const model = document.getElementById("model");
  model.textContent = `${info.model.id} (${info.model.revision}) · guard ${info.guard_version}`;
  const note = document.getElementById("model-note");
  if (note && info.model.note) note.textContent = info.model.note;
  setUpKeyBox(info);
  return info;
}

// Text with the loop marked: [0, onset) plain, [onset, repeat) the first copy, the rest the loop.
function markedText(element, text, onset, repeat) {
  element.replaceChildren();
  if (onset === null || onset === undefined) {
    element.textContent = text;
    return;
  }
  const copy = document.createElement("mark");
  copy.className = "copy";
  copy.textContent = text.slice(onset, repeat);
  const loop = document.createElement("mark");
  loop.className = "loop";
  loop.textContent = text.slice(repeat);
  element.append(text.slice(0, onset), copy, loop);
}

async function fileToBase64(file) {
  const buffer = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < buffer.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, buffer.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
