// The menu diagram: zoom buttons above its box, and it opens at full size at the top of its middle
// (Graphviz centres the call's start, so the box's top-left corner is most often empty space).
// Without scripts the diagram is shown at full size and panned by scrolling its box.
"use strict";
(function () {
  const box = document.getElementById("diagram");
  const svg = box && box.querySelector("svg");
  if (!svg) return;
  const width = svg.width.baseVal.value;
  const height = svg.height.baseVal.value;
  let scale = 1;
  const bar = document.createElement("div");
  bar.className = "diagram-zoom";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Zoom");
  const shown = document.createElement("span");
  shown.id = "diagram-scale";
  function show(next) {
    scale = Math.min(4, Math.max(0.05, next));
    svg.style.width = width * scale + "px";
    svg.style.height = height * scale + "px";
    shown.textContent = Math.round(scale * 100) + " %";
  }
  function middle() {
    box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2;
  }
  function button(text, title, action) {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = text;
    element.title = title;
    element.setAttribute("aria-label", title);
    element.addEventListener("click", action);
    bar.append(element);
  }
  button("\u2212", "Zoom out", () => show(scale / 1.25));
  button("+", "Zoom in", () => show(scale * 1.25));
  button("Fit", "Fit the whole diagram in the box", () => show(Math.min(1, box.clientWidth / width)));
  button("100 %", "Full size", () => { show(1); middle(); });
  bar.append(shown);
  box.before(bar);
  show(1);
  middle();
})();
