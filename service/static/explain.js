// The explain page: POST /explain on this origin, then shade each token of the original text.
// No inline code and no other origin, so the page runs under its narrow CSP.
"use strict";

// Colour intensity reaches its maximum at this attribution (share of the prediction's score).
const FULL_SHADE = 0.25;

function shade(attribution) {
  const strength = Math.min(Math.abs(attribution) / FULL_SHADE, 1);
  const rgb = attribution >= 0 ? "34 160 60" : "214 40 40";
  return `rgb(${rgb} / ${(0.85 * strength).toFixed(3)})`;
}

// Rebuild the text from the spans the service returned: the text between tokens stays plain.
function render(container, text, tokens) {
  container.replaceChildren();
  let position = 0;
  for (const token of tokens) {
    if (token.start < position) continue; // overlapping spans (one character, two tokens)
    container.append(document.createTextNode(text.slice(position, token.start)));
    const span = document.createElement("span");
    span.className = "token";
    span.textContent = text.slice(token.start, token.end);
    span.dataset.attribution = token.attribution.toFixed(4);
    span.title = `${token.token}: ${token.attribution >= 0 ? "+" : ""}${token.attribution.toFixed(3)}`;
    span.style.backgroundColor = shade(token.attribution);
    container.append(span);
    position = token.end;
  }
  container.append(document.createTextNode(text.slice(position)));
}

async function explain(event) {
  event.preventDefault();
  const text = document.getElementById("text").value;
  const status = document.getElementById("status");
  status.className = "";
  status.textContent = "Explaining…";
  try {
    const response = await fetch("/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    const result = body.explanations[0];
    document.getElementById("label").textContent = result.label;
    document.getElementById("score").textContent = result.score.toFixed(3);
    document.getElementById("method").textContent = body.method.name;
    render(document.getElementById("highlighted"), text, result.tokens);
    document.getElementById("result").hidden = false;
    status.textContent = "";
    document.body.dataset.state = "done";
  } catch (error) {
    status.className = "error";
    status.textContent = `Could not explain: ${error.message}`;
    document.body.dataset.state = "error";
  }
}

document.getElementById("form").addEventListener("submit", explain);
