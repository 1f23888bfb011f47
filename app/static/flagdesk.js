// Site-wide behaviour. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  // Every htmx request carries the CSRF token, as every form does.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
  });

  // Blurred content: a button reveals it (and hides it again). Delegated, so content
  // that htmx swaps in later works too.
  function toggle(box, reveal) {
    var button = box.querySelector(".reveal");
    var body = box.querySelector(".sensitive-body");
    box.dataset.revealed = reveal ? "true" : "false";
    button.setAttribute("aria-expanded", reveal ? "true" : "false");
    button.textContent = reveal ? button.dataset.hideLabel : button.dataset.showLabel;
    if (reveal) body.removeAttribute("aria-hidden"); else body.setAttribute("aria-hidden", "true");
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".sensitive > .reveal");
    if (!button) return;
    event.preventDefault();
    event.stopPropagation();
    var box = button.parentElement;
    toggle(box, box.dataset.revealed !== "true");
  });
  window.Flagdesk = window.Flagdesk || {};
  window.Flagdesk.toggleSensitive = toggle;
})();
