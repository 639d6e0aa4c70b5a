// The menu diagram opens at the top of its middle: Graphviz centres the call's start, so the box's
// top-left corner (where a scrolled box opens) is most often empty space.
"use strict";
(function () {
  const box = document.getElementById("diagram");
  if (box) box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2;
})();
