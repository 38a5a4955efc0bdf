// The review queue: logged failures, their page image and loop, and a correction for each.
"use strict";

const queue = { last: null };

async function imageInto(img, url) {
  // <img src> cannot send the API key: fetch it, then show the blob
  const response = await fetch(url, { headers: authHeaders() });
  if (response.ok) img.src = URL.createObjectURL(await response.blob());
  else img.alt = "image expired";
}

function fieldsOf(raw) {
  try {
    const value = JSON.parse(raw);
    if (value && typeof value === "object") return value;
  } catch (_) { /* the output was not the JSON schema */ }
  return { text: raw };
}

function card(item) {
  const box = document.createElement("form");
  box.className = "failure";
  box.dataset.requestId = item.request_id;
  box.dataset.page = item.page;
  const v = item.verdict;
  box.innerHTML = `
    <div><img alt="page"><div class="note"></div></div>
    <div>
      <div class="event"></div>
      <label class="field">what the model wrote (loop marked)</label><pre class="live output"></pre>
      <label class="field">what the request returned${item.recovered ? " (recovered)" : ""}</label><pre class="live final"></pre>
      <label class="field">correct transcription: text</label><textarea name="text" rows="6"></textarea>
      <label class="field">header</label><textarea name="header" rows="1"></textarea>
      <label class="field">footer</label><textarea name="footer" rows="1"></textarea>
      <div class="row"><button type="submit">Send correction</button>
        <button type="button" class="secondary accept">Accept the returned text</button><span class="status"></span></div>
    </div>`;
  box.querySelector(".note").textContent = `request ${item.request_id} · page ${item.page} · attempt ${item.attempt} · ${new Date(item.time * 1000).toLocaleString()}`;
  box.querySelector(".event").textContent = `${v.kind}, period ${v.period} tokens, ${v.repeats} copies`;
  markedText(box.querySelector(".output"), item.output, item.onset_chars, item.repeat_chars);
  box.querySelector(".final").textContent = item.final_output;
  const start = item.correction || fieldsOf(item.final_output);
  for (const name of ["text", "header", "footer"]) box.elements[name].value = start[name] || "";
  if (item.correction) box.querySelector(".status").textContent = "corrected already";
  imageInto(box.querySelector("img"), item.image_url);
  box.addEventListener("submit", (e) => { e.preventDefault(); send(box, null); });
  box.querySelector(".accept").addEventListener("click", () => send(box, fieldsOf(item.final_output)));
  return box;
}

async function send(box, accepted) {
  const status = box.querySelector(".status");
  const body = { page: Number(box.dataset.page) };
  for (const name of ["text", "header", "footer"]) body[name] = accepted ? accepted[name] || "" : box.elements[name].value;
  try {
    await requestJSON(`/v1/ocr/${box.dataset.requestId}/feedback`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    status.className = "status ok";
    status.textContent = "correction stored";
  } catch (error) {
    status.className = "status bad";
    status.textContent = `not stored: ${error.message}`;
  }
}

async function load(older) {
  const counts = document.getElementById("counts");
  const list = document.getElementById("queue");
  const url = older && queue.last ? `/v1/failures?limit=20&before=${queue.last}` : "/v1/failures?limit=20";
  try {
    const found = await requestJSON(url);
    if (!older) list.replaceChildren();
    counts.className = "status ok";
    counts.textContent = `${found.total} failures logged · ${found.corrections} corrections stored · ${found.pairs_ready} of the ${found.items.length} shown are ready to become pairs`;
    if (!found.items.length && !older) list.textContent = "No failure logged yet.";
    for (const item of found.items) list.append(card(item));
    queue.last = found.items.length ? found.items[found.items.length - 1].id : queue.last;
    document.getElementById("older").classList.toggle("hidden", found.items.length < 20);
  } catch (error) {
    counts.className = "status bad";
    counts.textContent = error.status === 503
      ? "The review queue is unavailable: Redis does not answer. OCR still works; failures wait in memory."
      : `cannot load the queue: ${error.message}`;
  }
}

loadInfo().then(() => {
  document.getElementById("refresh").addEventListener("click", () => load(false));
  document.getElementById("older").addEventListener("click", () => load(true));
  load(false);
});
