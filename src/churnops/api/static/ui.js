// The scoring page: builds the form from /ui/form.json, scores through POST /predict (one
// customer, with explanations when the model gives them) and POST /predict/csv (a file).
// No libraries; text from the server is only ever set as text, never parsed as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const TOP_REASONS = 8;
let form = null; // the description served at /ui/form.json

function $(id) {
  return document.getElementById(id);
}

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgElement(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

function formatNumber(value) {
  if (value === null || value === undefined) return "?";
  return Math.abs(value) >= 1000 || Number.isInteger(value)
    ? String(Math.round(value * 100) / 100)
    : String(Math.round(value * 1000) / 1000);
}

function percent(p) {
  return (p * 100).toFixed(1) + "%";
}

// An error answer of the API: its one-line detail and, when given, each problem.
async function showError(node, response, prefix) {
  node.replaceChildren();
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  const detail = body && body.detail ? body.detail : `HTTP ${response.status}`;
  node.append(element("strong", {}, `${prefix} (${response.status}): `), detail);
  if (body && Array.isArray(body.problems) && body.problems.length > 1) {
    const list = element("ul");
    for (const p of body.problems) {
      const where = [];
      if (p.line !== undefined) where.push(`line ${p.line}`);
      else if (p.record !== null && p.record !== undefined) where.push(`record ${p.record}`);
      if (p.field) where.push(p.field);
      list.append(element("li", {}, `${where.join(", ")}: ${p.problem}`));
    }
    node.append(list);
  }
  show(node, true);
}

function showMessage(node, text) {
  node.textContent = text;
  show(node, true);
}

// -- the form ---------------------------------------------------------------------------------

function middle(feature) {
  if (feature.minimum === null || feature.maximum === null) return "";
  const mid = (feature.minimum + feature.maximum) / 2;
  return feature.integer ? String(Math.round(mid)) : String(Math.round(mid * 100) / 100);
}

function fieldFor(feature) {
  const box = element("div", { class: "field" });
  const id = `f-${feature.name}`;
  box.append(element("label", { for: id }, feature.name));
  let input;
  if (feature.kind === "categorical") {
    input = element("select", { id, name: feature.name });
    if (feature.allows_missing) input.append(element("option", { value: "" }, "(missing)"));
    for (const category of feature.categories) {
      input.append(element("option", { value: category }, category));
    }
    if (feature.categories.length) input.value = feature.categories[0];
    box.append(input);
    box.append(element("span", { class: "hint" }, `${feature.categories.length} categories`));
  } else {
    input = element("input", {
      id,
      name: feature.name,
      type: "number",
      step: feature.integer ? "1" : "any",
      inputmode: "decimal",
    });
    if (feature.minimum !== null) input.min = String(feature.minimum);
    if (feature.maximum !== null) input.max = String(feature.maximum);
    input.required = !feature.allows_missing;
    input.value = middle(feature);
    box.append(input);
    const range = `trained on ${formatNumber(feature.minimum)} – ${formatNumber(feature.maximum)}`;
    box.append(
      element("span", { class: "hint" }, feature.allows_missing ? `${range}; may be blank` : range),
    );
  }
  input.dataset.kind = feature.kind;
  return box;
}

function buildForm() {
  const fields = $("fields");
  fields.replaceChildren();
  for (const name of form.id_columns) {
    const box = element("div", { class: "field" });
    box.append(element("label", { for: `f-${name}` }, name));
    box.append(element("input", { id: `f-${name}`, name, type: "text", "data-kind": "id" }));
    box.append(element("span", { class: "hint" }, "optional: kept in the prediction log"));
    fields.append(box);
  }
  for (const feature of form.features) fields.append(fieldFor(feature));
  const synthetic = form.model.synthetic_training_data;
  $("model").textContent =
    `Model ${form.model.name} ${form.model.version} · predicts ${form.target} ` +
    `(${form.positive_label} at churn probability ≥ ${form.threshold})`;
  show($("synthetic"), synthetic);
  $("probability-caption").textContent = `Probability of ${form.target} = ${form.positive_label}`;
  const limits = form.limits;
  $("upload-help").append(
    ` At most ${limits.max_records.toLocaleString("en")} rows and ` +
      `${(limits.max_body_bytes / 1048576).toFixed(0)} MiB per file.`,
  );
  $("score").disabled = false;
  $("upload-button").disabled = false;
}

function record() {
  const out = {};
  for (const input of $("fields").querySelectorAll("input, select")) {
    const value = input.value;
    if (input.dataset.kind === "id") {
      if (value.trim()) out[input.name] = value.trim();
    } else if (input.dataset.kind === "numeric") {
      out[input.name] = value === "" ? null : Number(value);
    } else {
      out[input.name] = value === "" ? null : value;
    }
  }
  return out;
}

// -- one customer's result --------------------------------------------------------------------

function drawGauge(p) {
  const width = 560;
  const svg = svgElement("svg", {
    id: "gauge-chart",
    width: String(width),
    height: "34",
    viewBox: `0 0 ${width} 34`,
    role: "img",
    "aria-label": `churn probability ${percent(p)}, threshold ${form.threshold}`,
  });
  svg.append(svgElement("rect", { class: "track", x: "0", y: "4", width: String(width), height: "14" }));
  svg.append(
    svgElement("rect", {
      class: p >= form.threshold ? "up" : "down",
      x: "0",
      y: "4",
      width: String(Math.max(1, p * width)),
      height: "14",
    }),
  );
  const t = form.threshold * width;
  svg.append(svgElement("line", { class: "threshold", x1: String(t), x2: String(t), y1: "0", y2: "22" }));
  svg.append(
    svgElement("text", { class: "small", x: String(Math.min(t + 4, width - 90)), y: "32" }, `threshold ${form.threshold}`),
  );
  $("gauge").replaceChildren(svg);
}

// The contributions as horizontal bars around zero: red pushes toward churn, blue away.
function drawReasons(explanation) {
  const box = $("reasons");
  box.replaceChildren();
  const contributions = explanation && Array.isArray(explanation.contributions)
    ? explanation.contributions.slice(0, TOP_REASONS)
    : [];
  if (!contributions.length) {
    box.append(element("p", { id: "no-explanation", class: "muted" }, "No explanation available for this model."));
    return;
  }
  const row = 26;
  const labelWidth = 250;
  const valueWidth = 60;
  const width = 640;
  const half = (width - labelWidth - valueWidth) / 2;
  const zero = labelWidth + half;
  const largest = Math.max(...contributions.map((c) => Math.abs(c.contribution))) || 1;
  const height = row * contributions.length + 24;
  const svg = svgElement("svg", {
    id: "reasons-chart",
    width: String(width),
    height: String(height),
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "the features that moved this customer's score most",
  });
  contributions.forEach((c, i) => {
    const y = i * row + 4;
    const length = Math.max(1, (Math.abs(c.contribution) / largest) * (half - 4));
    const up = c.contribution > 0;
    const value = c.value === null || c.value === undefined ? "missing" : String(c.value);
    const label = `${c.feature} = ${value}`;
    svg.append(
      svgElement("text", { x: String(labelWidth - 8), y: String(y + 15), "text-anchor": "end" },
        label.length > 38 ? label.slice(0, 37) + "…" : label),
    );
    const bar = svgElement("rect", {
      class: `bar ${up ? "up" : "down"}`,
      x: String(up ? zero : zero - length),
      y: String(y + 3),
      width: String(length),
      height: String(row - 8),
      "data-feature": c.feature,
    });
    bar.append(svgElement("title", {}, `${label}: ${c.contribution >= 0 ? "+" : ""}${c.contribution.toFixed(3)}`));
    svg.append(bar);
    svg.append(
      svgElement("text", { class: "small", x: String(width - valueWidth + 6), y: String(y + 15) },
        `${c.contribution >= 0 ? "+" : ""}${c.contribution.toFixed(3)}`),
    );
  });
  const bottom = row * contributions.length + 4;
  svg.append(svgElement("line", { class: "axis", x1: String(zero), x2: String(zero), y1: "0", y2: String(bottom) }));
  svg.append(svgElement("text", { class: "small", x: String(labelWidth), y: String(bottom + 14) }, "← away from churn"));
  svg.append(
    svgElement("text", { class: "small", x: String(zero + half - 4), y: String(bottom + 14), "text-anchor": "end" }, "toward churn →"),
  );
  box.append(svg);
  if (typeof explanation.base_value === "number") {
    box.append(
      element("p", { class: "muted" },
        `Contributions in log-odds; the model's base value is ${explanation.base_value.toFixed(3)}.`),
    );
  }
}

function showResult(answer) {
  const p = answer.probabilities[form.positive_label];
  $("probability").textContent = percent(p);
  $("probability").dataset.value = String(p);
  const label = $("label");
  label.textContent = `${form.target}: ${answer.prediction}`;
  label.className = `label ${answer.prediction === form.positive_label ? "positive" : "negative"}`;
  drawGauge(p);
  const warnings = $("warnings");
  warnings.replaceChildren(...(answer.warnings || []).map((w) => element("li", {}, w)));
  drawReasons(answer.explanation);
  show($("result"), true);
}

async function scoreCustomer(event) {
  event.preventDefault();
  show($("single-error"), false);
  $("score").disabled = true;
  try {
    const body = JSON.stringify([record()]);
    const post = (query) =>
      fetch(`/predict${query}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });
    const top = Math.min(TOP_REASONS, form.features.length);
    let response = await post(`?explain=true&top=${top}`);
    // 501: this model cannot explain its predictions; score it without reasons.
    if (response.status === 501) response = await post("");
    if (!response.ok) {
      show($("result"), false);
      await showError($("single-error"), response, "Not scored");
      return;
    }
    const answers = await response.json();
    showResult(answers["0"]);
  } catch (error) {
    showMessage($("single-error"), `Not scored: ${error.message}`);
  } finally {
    $("score").disabled = false;
  }
}

// -- a file -----------------------------------------------------------------------------------

async function scoreFile(event) {
  event.preventDefault();
  const file = $("file").files[0];
  const error = $("upload-error");
  const status = $("upload-status");
  const link = $("download");
  show(error, false);
  show(link, false);
  if (!file) return;
  if (file.size > form.limits.max_body_bytes) {
    showMessage(
      error,
      `${file.name} is ${(file.size / 1048576).toFixed(1)} MiB: the limit is ` +
        `${(form.limits.max_body_bytes / 1048576).toFixed(0)} MiB per file; split it.`,
    );
    return;
  }
  $("upload-button").disabled = true;
  status.textContent = `Scoring ${file.name}…`;
  try {
    const response = await fetch("/predict/csv", {
      method: "POST",
      headers: { "Content-Type": "text/csv" },
      body: file,
    });
    if (!response.ok) {
      status.textContent = "";
      await showError(error, response, `${file.name} was not scored`);
      return;
    }
    const scored = await response.blob();
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(scored);
    link.download = file.name.replace(/\.csv$/i, "") + "-scored.csv";
    link.textContent = `Download ${link.download}`;
    const rows = response.headers.get("X-Records");
    status.textContent = `Scored ${rows} rows of ${file.name} with model ${response.headers.get("X-Model-Version")}.`;
    show(link, true);
    link.click();
  } catch (failure) {
    status.textContent = "";
    showMessage(error, `${file.name} was not scored: ${failure.message}`);
  } finally {
    $("upload-button").disabled = false;
  }
}

async function start() {
  $("customer").addEventListener("submit", scoreCustomer);
  $("upload").addEventListener("submit", scoreFile);
  try {
    const response = await fetch("/ui/form.json");
    if (!response.ok) {
      await showError($("page-error"), response, "The model's schema could not be read");
      return;
    }
    form = await response.json();
    buildForm();
  } catch (error) {
    showMessage($("page-error"), `The model's schema could not be read: ${error.message}`);
  }
}

document.addEventListener("DOMContentLoaded", start);
