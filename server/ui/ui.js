// ponder's explorer: one question, several strategies side by side, through
// the public API only (GET /v1/strategies, streamed POST /v1/chat/completions
// with include_candidates), so it doubles as an example client. No library:
// the tree and the vote are plain SVG. Text from the API (names, answers,
// error messages, which may quote a client's input or an upstream's page)
// only ever reaches the page as text: elements are built with DOM calls,
// never from HTML strings.
"use strict";

const $ = (selector) => document.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";
const PRESELECTED = ["self_consistency", "best_of_n", "beam_search", "dvts"];
const DEFAULT_PARAMS = { beam_search: { beam_width: 2, expand: 4 } };

function headers() {
  const key = $("#key").value.trim();
  localStorage.setItem("ponder-key", key);
  const sent = { "Content-Type": "application/json" };
  if (key) sent.Authorization = `Bearer ${key}`;
  return sent;
}

async function errorText(response) {
  try {
    return (await response.json()).error.message;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function loadStrategies() {
  const box = $("#strategies");
  const response = await fetch("v1/strategies", { headers: headers() });
  if (!response.ok) {
    $("#status").textContent = `Strategies: ${await errorText(response)}`;
    return;
  }
  $("#status").textContent = "";
  box.querySelectorAll(".strategy").forEach((old) => old.remove());
  for (const card of (await response.json()).data) {
    const params = DEFAULT_PARAMS[card.name] || ("n" in card.defaults ? { n: 8 } : {});
    const label = html("label", { className: "strategy", title: card.description });
    const choose = html("input", { type: "checkbox", name: "strategy", value: card.name });
    choose.checked = PRESELECTED.includes(card.name);
    const given = html("input", { type: "text", value: JSON.stringify(params) });
    given.setAttribute("aria-label", `${card.name} parameters`);
    label.append(choose, `${card.name} `, given);
    box.appendChild(label);
  }
}

// An HTML element with its properties set (textContent for text).
function html(name, properties = {}) {
  return Object.assign(document.createElement(name), properties);
}

function panel(name) {
  const run = html("section", { className: "run" });
  run.dataset.strategy = name;
  run.append(
    html("h2", { textContent: name }), html("div", { className: "meta", textContent: "running…" }),
    html("div", { className: "answer" }), html("pre", { className: "trace" }),
    html("div", { className: "vote" }), html("div", { className: "tree" }),
    html("div", { className: "candidates" }));
  $("#runs").appendChild(run);
  return run;
}

function showError(run, message) {
  run.querySelector(".meta").replaceChildren(html("span", { className: "error", textContent: message }));
}

async function runOne(name, params, body) {
  const run = panel(name);
  const started = performance.now();
  const request = { ...body, strategy: { name, ...params } };
  const response = await fetch("v1/chat/completions", {
    method: "POST", headers: headers(), body: JSON.stringify(request),
  });
  if (!response.ok) {
    showError(run, await errorText(response));
    return;
  }
  let answer = "", usage = null, ponder = null, buffer = "";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const frames = buffer.split("\n\n");
    buffer = frames.pop();
    for (const frame of frames) {
      const data = frame.split("\n").find((line) => line.startsWith("data: "));
      if (!data || data === "data: [DONE]") continue;
      const chunk = JSON.parse(data.slice(6));
      if (chunk.error) {
        showError(run, chunk.error.message);
        return;
      }
      for (const choice of chunk.choices || []) {
        if (choice.delta.reasoning) run.querySelector(".trace").textContent += choice.delta.reasoning;
        if (choice.delta.content) answer += choice.delta.content;
      }
      run.querySelector(".answer").textContent = answer;
      if (chunk.usage) usage = chunk.usage;
      if (chunk.ponder) ponder = chunk.ponder;
      if (chunk.ponder && chunk.ponder.tree) draw(run, ".tree", treeDrawing(chunk.ponder.tree));
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    run.querySelector(".meta").textContent = `running… ${seconds} s`;
  }
  finish(run, ponder, usage, (performance.now() - started) / 1000);
}

function finish(run, ponder, usage, seconds) {
  const tokens = usage ? usage.completion_tokens : "?";
  const samples = ponder ? ponder.samples : "?";
  run.querySelector(".meta").textContent =
    `${samples} samples · ${tokens} tokens · ${seconds.toFixed(1)} s` +
    (ponder && ponder.answer !== undefined ? ` · answer ${ponder.answer}` : "");
  run.classList.add("done");
  if (!ponder) return;
  if (ponder.votes) draw(run, ".vote", voteChart(ponder.votes, ponder.answer));
  if (ponder.tree) draw(run, ".tree", treeDrawing(ponder.tree, ponder.answer));
  if (ponder.candidates) draw(run, ".candidates", candidateTable(ponder));
}

// The search's tree arrives after every round, then whole with the answer.
function draw(run, where, drawing) {
  const holder = run.querySelector(where);
  holder.replaceChildren(drawing);
}

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function voteChart(votes, winner) {
  const entries = Object.entries(votes).sort((a, b) => b[1] - a[1]).slice(0, 8);
  const most = Math.max(...entries.map(([, count]) => count));
  const svg = element("svg", { class: "votes", width: 440, height: 16 * entries.length + 4 });
  entries.forEach(([answer, count], row) => {
    const y = 2 + row * 16;
    svg.appendChild(element("text", { x: 0, y: y + 10 }, answer.slice(0, 14)));
    svg.appendChild(element("rect", {
      class: answer === winner ? "bar winner" : "bar", x: 100, y, height: 12,
      width: Math.max(2, (300 * count) / most),
    }));
    svg.appendChild(element("text", { x: 104 + (300 * count) / most, y: y + 10 }, count));
  });
  return svg;
}

function treeDrawing(tree, winner) {
  const columns = new Map();
  for (const node of tree) {
    if (!columns.has(node.depth)) columns.set(node.depth, []);
    columns.get(node.depth).push(node);
  }
  const tallest = Math.max(...[...columns.values()].map((column) => column.length));
  const at = new Map();
  for (const [depth, column] of columns) {
    column.forEach((node, row) => at.set(node.id, [12 + (depth - 1) * 90, 12 + row * 20]));
  }
  const width = 24 + (Math.max(...columns.keys()) - 1) * 90;
  const svg = element("svg", { class: "search-tree", width: Math.max(width, 60), height: 24 + tallest * 20 });
  for (const node of tree) {
    if (node.parent === null || !at.has(node.parent)) continue;
    const [x1, y1] = at.get(node.parent), [x2, y2] = at.get(node.id);
    svg.appendChild(element("line", { class: "edge", x1, y1, x2, y2 }));
  }
  let pruned = 0;
  for (const node of tree) {
    const [cx, cy] = at.get(node.id);
    const classes = ["node", node.kept ? "kept" : "pruned"];
    if (!node.kept) pruned += 1;
    if (node.completed) classes.push("completed");
    if (node.completed && node.answer !== null && node.answer === winner) classes.push("chosen");
    const circle = element("circle", { class: classes.join(" "), cx, cy, r: 6 });
    const score = node.step_score === null ? "-" : node.step_score.toFixed(2);
    circle.appendChild(element("title", {},
      `depth ${node.depth} · step score ${score} · score ${node.score.toFixed(2)}` +
      `${node.kept ? " · kept" : " · pruned"}${node.completed ? " · complete" : ""}\n${node.step}` +
      (node.answer ? `\nanswer: ${node.answer}` : "")));
    svg.appendChild(circle);
  }
  svg.dataset.pruned = pruned;
  const figure = html("figure");
  figure.append(svg, html("figcaption", { className: "legend", textContent: `${tree.length} steps, ` +
    `${pruned} pruned · green kept, grey pruned, blue ring complete, gold the answer` }));
  return figure;
}

function candidateTable(ponder) {
  const table = html("table");
  table.insertRow().append(...["#", "answer", "score", "step scores", "tokens"].map(
    (heading) => html("th", { textContent: heading })));
  const chosen = ponder.details ? ponder.details.selected_index : undefined;
  ponder.candidates.forEach((candidate, index) => {
    const row = table.insertRow();
    if (index === chosen) row.className = "chosen";
    const steps = (candidate.step_scores || []).map((s) => s.toFixed(2)).join(" ");
    row.title = (candidate.step_labels || []).join(" | ") || candidate.text;
    for (const cell of [index, candidate.answer, candidate.score === null ||
      candidate.score === undefined ? "-" : candidate.score.toFixed(3), steps, candidate.tokens]) {
      row.insertCell().textContent = cell === null || cell === undefined ? "-" : cell;
    }
  });
  return table;
}

$("#ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#runs").replaceChildren();
  $("#status").textContent = "";
  let model;
  try {
    model = await currentModel();
  } catch (error) {
    $("#status").textContent = error.message;
    return;
  }
  const body = {
    model,
    messages: [{ role: "user", content: $("#question").value }],
    max_tokens: Number($("#max-tokens").value), temperature: Number($("#temperature").value),
    seed: Number($("#seed").value), stream: true, include_candidates: true,
    stream_options: { include_usage: true },
  };
  const chosen = [...document.querySelectorAll("input[name=strategy]:checked")];
  if (!chosen.length) $("#status").textContent = "Pick at least one strategy.";
  await Promise.all(chosen.map((box) => {
    let params;
    try {
      params = JSON.parse(box.parentElement.querySelector("input[type=text]").value || "{}");
    } catch {
      $("#status").textContent = `${box.value}: the parameters are not JSON.`;
      return null;
    }
    return runOne(box.value, params, body);
  }));
});

async function currentModel() {
  const response = await fetch("v1/models", { headers: headers() });
  if (!response.ok) throw new Error(await errorText(response));
  return (await response.json()).data[0].id;
}

$("#key").value = localStorage.getItem("ponder-key") || "";
$("#key").addEventListener("change", loadStrategies);
loadStrategies();
