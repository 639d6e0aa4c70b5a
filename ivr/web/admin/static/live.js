// The live queues page: fetch /admin/api/queues every 2 s and redraw the two tables.
// Text goes in with textContent only, never as HTML.
"use strict";
(function () {
  const table = document.getElementById("queues");
  if (!table) return;
  const api = table.dataset.api;
  const PERIOD_MS = 2000;

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "\u2013";
    const whole = Math.round(seconds);
    if (whole < 60) return whole + " s";
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = whole % 60;
    const two = (n) => String(n).padStart(2, "0");
    return hours ? hours + " h " + two(minutes) + " min" : minutes + " min " + two(secs) + " s";
  }

  function cell(tag, text, className) {
    const element = document.createElement(tag);
    element.textContent = text;
    if (className) element.className = className;
    if (tag === "th") element.scope = "row";
    return element;
  }

  function drawLines(lines) {
    const body = table.tBodies[0];
    const rows = lines.map((line) => {
      const row = document.createElement("tr");
      row.dataset.queue = line.queue;
      row.dataset.language = line.language;
      row.append(
        cell("th", line.queue),
        cell("td", line.language),
        cell("td", String(line.waiting), "waiting num"),
        cell("td", duration(line.longest_wait_seconds), "longest-wait num"),
        cell("td", duration(line.estimated_wait_seconds), "estimated-wait num"),
        cell("td", line.agents_available + " / " + line.agents_busy, "agents num"),
      );
      return row;
    });
    body.replaceChildren(...rows);
    document.getElementById("no-lines").hidden = lines.length > 0;
  }

  function drawAgents(agents) {
    const body = document.getElementById("agents").tBodies[0];
    const rows = agents.map((agent) => {
      const row = document.createElement("tr");
      row.dataset.agent = agent.agent;
      row.append(
        cell("th", agent.agent),
        cell("td", agent.name),
        cell("td", agent.status, "status status-" + agent.status),
        cell("td", agent.call || "", "call"),
      );
      return row;
    });
    body.replaceChildren(...rows);
  }

  // The banner over every page: the lines where callers wait and nobody is logged in to serve them.
  function drawUnattended(lines) {
    const banner = document.getElementById("unattended");
    // Redraw only what changed: a screen reader repeats an alert whose content is replaced.
    const shown = JSON.stringify(lines);
    if (!banner || banner.dataset.shown === shown) return;
    banner.dataset.shown = shown;
    const items = lines.map((line) => {
      const item = document.createElement("li");
      item.dataset.queue = line.queue;
      item.dataset.language = line.language;
      const name = document.createElement("strong");
      name.textContent = line.queue;
      item.append("queue ", name, " (" + line.language + "): " + line.waiting + " waiting, the first since ");
      item.append(line.since ? moment(line.since, "minute") : "\u2013");
      return item;
    });
    banner.querySelector("ul").replaceChildren(...items);
    banner.hidden = lines.length === 0;
  }

  // An instant as the page shows it: a <time> that times.js puts in the admin's zone.
  function moment(iso, show) {
    const element = document.createElement("time");
    element.dateTime = iso;
    element.dataset.show = show;
    element.textContent = iso;
    if (window.ivrTimes) window.ivrTimes.show(element);
    return element;
  }

  async function refresh() {
    try {
      const response = await fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status === 401) {
        window.location.href = "/admin/login";
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      drawLines(data.lines);
      drawAgents(data.agents);
      drawUnattended(data.unattended);
      document.getElementById("updated").replaceChildren(moment(data.at, "second"));
    } catch (error) {
      document.getElementById("updated").textContent = "(update failed: " + error.message + ")";
    } finally {
      window.setTimeout(refresh, PERIOD_MS);
    }
  }
  window.setTimeout(refresh, PERIOD_MS);
})();
