// MedHarm behaviour. Every script is a static file: the Content-Security-Policy forbids inline
// scripts, so no <script> blocks, no on*= or hx-on attributes, and no eval anywhere.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // Tell assistive technology that the query table is being replaced while htmx fetches it.
  function markBusy(event, busy) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "query-table") {
      target.setAttribute("aria-busy", busy ? "true" : "false");
    }
  }
  document.addEventListener("htmx:beforeRequest", function (event) { markBusy(event, true); });
  document.addEventListener("htmx:afterSettle", function (event) { markBusy(event, false); });
  document.addEventListener("htmx:responseError", function (event) { markBusy(event, false); });
  document.addEventListener("htmx:sendError", function (event) { markBusy(event, false); });

  // After a page link swaps the table, move focus to the result count: keyboard and screen
  // reader users continue from the top of the new page instead of a link that no longer exists.
  // Not after typing in the search box, which must keep its focus.
  document.addEventListener("htmx:afterSettle", function (event) {
    var source = event.detail && event.detail.elt;
    if (!source || !source.closest || !source.closest(".pager")) {
      return;
    }
    var count = document.getElementById("result-count");
    if (count) {
      count.setAttribute("tabindex", "-1");
      count.focus({ preventScroll: true });
      count.scrollIntoView({ block: "nearest" });
    }
  });
})();
