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
      document.getElementById("updated").textContent = data.at;
    } catch (error) {
      document.getElementById("updated").textContent = "(update failed: " + error.message + ")";
    } finally {
      window.setTimeout(refresh, PERIOD_MS);
    }
  }
  window.setTimeout(refresh, PERIOD_MS);
})();
