// benchfleet engineer dashboards: render what the hub's event streams push.
// No framework, no CDN: plain DOM (text only, never HTML from data) and small SVG charts.
"use strict";

const config = JSON.parse(document.getElementById("config").textContent);
const app = document.getElementById("app");
const live = document.getElementById("live");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

async function act(alarmId, action, button) {
  button.disabled = true;
  const response = await fetch(`/dashboard/alarms/${alarmId}/${action}`, {
    method: "POST", headers: { "X-Dashboard": "1" }, credentials: "same-origin",
  });
  if (!response.ok) { button.disabled = false; button.title = `failed: ${response.status}`; }
}

function alarmTable(alarms, { actions = true, emptyText = "No open alarms." } = {}) {
  if (!alarms.length) return el("p", { class: "empty" }, emptyText);
  const head = ["Severity", "State", "Station", "Device", "Alarm", "Since", "Count", ""];
  return el("table", { class: "alarms" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, alarms.map((a) => el("tr", { class: `sev-${a.severity} st-${a.state}`, "data-alarm": a.id },
      el("td", {}, el("span", { class: `badge sev-${a.severity}` }, a.severity)),
      el("td", { class: "state" }, a.state, a.acknowledged_by ? ` (${a.acknowledged_by})` : ""),
      el("td", {}, el("a", { href: `/dashboard/stations/${encodeURIComponent(a.station_id)}` }, a.station_id)),
      el("td", {}, a.device || "station"),
      el("td", {}, el("strong", {}, a.kind), " ", a.message),
      el("td", { title: a.since }, ago(a.since)),
      el("td", { class: "num" }, a.count),
      el("td", {}, actions && a.state === "active"
        ? el("button", { class: "ack", onclick: (e) => act(a.id, "acknowledge", e.target) }, "Acknowledge") : null,
      actions && a.state !== "cleared"
        ? el("button", { class: "clear", onclick: (e) => act(a.id, "clear", e.target) }, "Clear") : null),
    ))));
}

function tile(label, value, extra) {
  return el("div", { class: `tile ${extra || ""}` }, el("span", { class: "value" }, value ?? "-"), el("span", { class: "label" }, label));
}

function renderOverview(d) {
  const stations = el("table", { class: "stations" },
    el("thead", {}, el("tr", {}, ["Station", "State", "Jobs in flight", "Open alarms", "Last seen", "Devices"].map((h) => el("th", {}, h)))),
    el("tbody", {}, d.stations.map((s) => el("tr", { "data-station": s.id },
      el("td", {}, el("a", { href: `/dashboard/stations/${encodeURIComponent(s.id)}` }, s.id)),
      el("td", {}, el("span", { class: `badge ${s.online ? "online" : "offline"}` }, s.online ? "online" : "offline"),
        s.blocked ? el("span", { class: "badge blocked" }, "no new work") : null),
      el("td", { class: "num" }, s.jobs_in_flight),
      el("td", { class: "num" }, s.open_alarms),
      el("td", {}, ago(s.last_seen_at)),
      el("td", {}, s.devices.join(", "))))));
  app.replaceChildren(
    el("section", { class: "tiles" },
      tile("stations online", d.online, "good"), tile("offline", d.offline, d.offline ? "bad" : ""),
      tile("jobs in flight", d.jobs_in_flight), tile("jobs done, last hour", d.jobs_done_last_hour),
      tile("points / s", d.points_per_s), tile("open alarms", d.alarms.length, d.alarms.length ? "bad" : "")),
    el("h2", {}, "Stations"), d.stations.length ? stations : el("p", { class: "empty" }, "No station has announced itself yet."),
    el("h2", {}, "Open alarms"), alarmTable(d.alarms));
}

function renderAlarms(d) {
  app.replaceChildren(el("h2", {}, "Open"), alarmTable(d.open),
    el("h2", {}, "Recently cleared"), alarmTable(d.cleared, { actions: false, emptyText: "None." }));
}

// ---- station detail: live charts ------------------------------------------------------------

const series = new Map(); // "device/metric" -> [[t, value], ...]

function chart(points, windowS) {
  const w = 320, h = 90, pad = 4;
  const numeric = points.filter((p) => typeof p[1] === "number");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "chart");
  if (numeric.length === 0) return svg;
  const tMax = Math.max(numeric[numeric.length - 1][0], Date.now() / 1000);
  // the x axis spans what we have (at least a minute), up to the whole window
  const tMin = Math.max(tMax - windowS, Math.min(numeric[0][0], tMax - 60));
  let lo = Math.min(...numeric.map((p) => p[1])), hi = Math.max(...numeric.map((p) => p[1]));
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => pad + ((t - tMin) / (tMax - tMin)) * (w - 2 * pad);
  const y = (v) => h - pad - ((v - lo) / (hi - lo)) * (h - 2 * pad);
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("points", numeric.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
  svg.append(line);
  for (const [value, cls] of [[hi, "hi"], [lo, "lo"]]) {
    const label = document.createElementNS(svg.namespaceURI, "text");
    label.setAttribute("x", pad + 2); label.setAttribute("y", cls === "hi" ? 12 : h - 6);
    label.setAttribute("class", cls); label.textContent = Number(value.toPrecision(4));
    svg.append(label);
  }
  return svg;
}

function renderStation(d) {
  if (d.reset) series.clear();
  const cutoff = Date.now() / 1000 - d.window_s;
  for (const s of d.series) {
    const key = `${s.device}/${s.metric}`;
    const kept = (series.get(key) || []).concat(s.points).filter((p) => p[0] >= cutoff);
    series.set(key, kept);
  }
  const byDevice = new Map();
  for (const [key, points] of [...series.entries()].sort()) {
    const [device, metric] = key.split("/");
    if (!byDevice.has(device)) byDevice.set(device, []);
    byDevice.get(device).push([metric, points]);
  }
  const devices = [...byDevice.entries()].map(([device, metrics]) => el("section", { class: "device", "data-device": device },
    el("h3", {}, device),
    el("div", { class: "charts" }, metrics.map(([metric, points]) => {
      const last = points.length ? points[points.length - 1][1] : null;
      const numeric = typeof last === "number";
      return el("figure", { class: numeric ? "metric numeric" : "metric text", "data-metric": metric, "data-points": points.length },
        el("figcaption", {}, metric, el("span", { class: "last" }, numeric ? Number(last.toPrecision(5)) : String(last))),
        numeric ? chart(points, d.window_s) : null);
    }))));
  const info = el("p", { class: "station-info" },
    el("span", { class: `badge ${d.online ? "online" : "offline"}` }, d.online ? "online" : "offline"),
    d.blocked_by ? el("span", { class: "badge blocked", title: d.blocked_by }, "no new work") : null,
    ` agent ${d.agent_version || "?"}, last seen ${ago(d.last_seen_at)}, `,
    `devices: ${d.devices.map((x) => `${x.name} (${x.family})`).join(", ") || "none"}`);
  app.replaceChildren(info, el("h2", {}, "Open alarms"), alarmTable(d.alarms),
    el("h2", {}, `Telemetry, last ${Math.round(d.window_s / 60)} min`),
    devices.length ? el("div", { class: "devices" }, devices) : el("p", { class: "empty" }, "No telemetry in this window."));
}

// ---- streams ----------------------------------------------------------------------------------

const streams = {
  overview: ["/dashboard/stream/overview", "overview", renderOverview],
  alarms: ["/dashboard/stream/alarms", "alarms", renderAlarms],
  station: [`/dashboard/stream/stations/${encodeURIComponent(config.station || "")}`, "station", renderStation],
};
const [url, eventName, render] = streams[config.page];
const source = new EventSource(url);
source.addEventListener(eventName, (e) => {
  render(JSON.parse(e.data));
  live.textContent = "live"; live.className = "live on";
  document.body.dataset.updated = String(Date.now());
});
source.addEventListener("missing", () => { app.replaceChildren(el("p", { class: "empty" }, "No such station.")); });
source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
source.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live off"; });
