// The SLA calendar form: the region list offers only the chosen country's regions.
// Without this script every country's regions are listed, grouped, and the server checks.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var country = document.querySelector("select[data-subdivisions]");
    if (!country) return;
    var region = document.getElementById(country.dataset.subdivisions);
    if (!region) return;
    function sync() {
      var groups = region.querySelectorAll("optgroup");
      groups.forEach(function (group) {
        var match = group.dataset.country === country.value;
        group.hidden = !match;
        group.disabled = !match;
      });
      var chosen = region.selectedOptions[0];
      if (chosen && chosen.parentElement.tagName === "OPTGROUP" && chosen.parentElement.disabled) {
        region.value = "";
      }
      region.disabled = !region.querySelector('optgroup[data-country="' + CSS.escape(country.value) + '"]');
    }
    country.addEventListener("change", sync);
    sync();
  });
})();
