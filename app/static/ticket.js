// The ticket page: `r` shows or hides all flagged (blurred) content at once.
(function () {
  "use strict";

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "r" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var boxes = document.querySelectorAll(".sensitive");
    if (!boxes.length || !window.Flagdesk || !window.Flagdesk.toggleSensitive) return;
    event.preventDefault();
    // One state for all: reveal everything unless everything is revealed already.
    var reveal = Array.prototype.some.call(boxes, function (box) {
      return box.dataset.revealed !== "true";
    });
    boxes.forEach(function (box) { window.Flagdesk.toggleSensitive(box, reveal); });
  });
})();
