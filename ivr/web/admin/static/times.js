// Every <time data-show> on a dashboard page in the admin's own time zone: the server writes UTC
// (readable with scripts off) and the exact instant in `datetime`; this rewrites the text as
// "2026-11-23 16:00 GMT+1" in the browser's zone, keeping the UTC text as the tooltip.
// `window.ivrTimes.show(element)` does one element (live.js calls it on what it redraws).
"use strict";
(function () {
  const PARTS = {
    minute: ["year", "month", "day", "hour", "minute"],
    second: ["year", "month", "day", "hour", "minute", "second"],
    time: ["hour", "minute", "second"],
  };
  const formats = {};

  function formatOf(show) {
    if (!formats[show]) {
      const options = { hourCycle: "h23", numberingSystem: "latn", timeZoneName: "short" };
      for (const part of PARTS[show]) options[part] = part === "year" ? "numeric" : "2-digit";
      formats[show] = new Intl.DateTimeFormat(navigator.language || "en", options);
    }
    return formats[show];
  }

  function localText(at, show) {
    const part = {};
    for (const piece of formatOf(show).formatToParts(at)) part[piece.type] = piece.value;
    const clock = part.hour + ":" + part.minute + (show === "minute" ? "" : ":" + part.second);
    const day = show === "time" ? "" : part.year + "-" + part.month + "-" + part.day + " ";
    return day + clock + " " + part.timeZoneName;
  }

  function utcText(at, show) {
    const iso = at.toISOString(); // 2026-11-23T15:00:05.000Z
    const text = show === "time" ? iso.slice(11, 19) : iso.slice(0, show === "minute" ? 16 : 19);
    return text.replace("T", " ") + " UTC";
  }

  function show(element) {
    const kind = element.dataset.show;
    const at = new Date(element.dateTime);
    if (!PARTS[kind] || Number.isNaN(at.getTime())) return;
    element.title = utcText(at, kind);
    element.textContent = localText(at, kind);
  }

  window.ivrTimes = { show: show };
  for (const element of document.querySelectorAll("time[data-show]")) show(element);
})();
