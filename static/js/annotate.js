// Keyboard-first labelling. A static file: the Content-Security-Policy forbids inline script.
//
// The "active field" is the rubric fieldset holding the focus. Number keys choose that field's
// point with the same key (shown on each point) and move on to the next field; the up and down
// arrows (or Tab) move between fields; Enter submits; S, F and G open skip, flag and guidelines.
// Nothing here is needed to label: without script the form is plain radio buttons and a button.
(function () {
  "use strict";

  // Never settle inline styles across swaps: the CSP forbids them, so copying one (even the empty
  // style="" a screenshot tool leaves on inputs) is only a violation report.
  if (window.htmx) {
    window.htmx.config.attributesToSettle = ["class", "width", "height"];
  }

  function fields(form) {
    return Array.prototype.slice.call(form.querySelectorAll("fieldset.rubric-field"));
  }

  function activeField() {
    var element = document.activeElement;
    return element && element.closest ? element.closest("fieldset.rubric-field") : null;
  }

  function isTyping(element) {
    if (!element) {
      return false;
    }
    var tag = element.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && element.type !== "radio" && element.type !== "checkbox");
  }

  function focusField(fieldset) {
    if (!fieldset) {
      return;
    }
    var target = fieldset.querySelector("input[type=radio]:checked") ||
      fieldset.querySelector("input[type=radio], textarea");
    if (target) {
      target.focus({ preventScroll: false });
      fieldset.scrollIntoView({ block: "nearest" });
    }
  }

  function firstOpenField(form) {
    var list = fields(form);
    for (var i = 0; i < list.length; i += 1) {
      var radios = list[i].querySelectorAll("input[type=radio]");
      if (radios.length && !list[i].querySelector("input[type=radio]:checked")) {
        return list[i];
      }
    }
    return list[0];
  }

  function move(form, from, step) {
    var list = fields(form);
    var index = list.indexOf(from);
    var next = list[Math.min(list.length - 1, Math.max(0, index + step))];
    if (next && next !== from) {
      focusField(next);
      return true;
    }
    return false;
  }

  function choose(fieldset, key) {
    var input = fieldset.querySelector('input[type=radio][data-key="' + key + '"]');
    if (!input) {
      return false;
    }
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    var form = fieldset.closest("form");
    // On to the next field, so a whole label is a run of digits and Enter.
    if (!move(form, fieldset, 1)) {
      input.focus();
    }
    return true;
  }

  function openPanel(id, focusSelector) {
    var panel = document.getElementById(id);
    if (!panel) {
      return;
    }
    panel.open = true;
    var target = panel.querySelector(focusSelector);
    if (target) {
      target.focus();
    }
  }

  function toggleGuidelines() {
    var panel = document.getElementById("guidelines");
    if (!panel) {
      return;
    }
    var show = panel.hidden;
    panel.hidden = !show;
    var layout = panel.closest(".annotate-layout");
    if (layout) {
      layout.classList.toggle("with-guidelines", show);
    }
    document.querySelectorAll("[data-toggle-guidelines]").forEach(function (button) {
      button.setAttribute("aria-expanded", show ? "true" : "false");
    });
    try {
      window.localStorage.setItem("medharm.guidelines", show ? "shown" : "hidden");
    } catch (error) { /* storage may be disabled: the panel just starts closed */ }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-toggle-guidelines]");
    if (button) {
      event.preventDefault();
      toggleGuidelines();
    }
  });

  document.addEventListener("keydown", function (event) {
    var form = document.querySelector("form.rubric-form");
    if (!form || event.altKey || event.metaKey || event.defaultPrevented) {
      return;
    }
    var target = event.target;
    var inForm = form.contains(target) || target === document.body || target === document.documentElement;

    if (event.key === "Enter") {
      if (target.tagName === "TEXTAREA") {
        if (event.ctrlKey && target.closest("form")) {
          event.preventDefault();
          target.closest("form").requestSubmit();
        }
        return;
      }
      if (form.contains(target) && target.tagName !== "BUTTON" && target.tagName !== "A") {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey) {
      return;
    }
    if (event.key === "Escape" && isTyping(target)) {
      var holder = target.closest("fieldset.rubric-field");
      if (holder) {
        target.blur();
        holder.setAttribute("tabindex", "-1");
        holder.focus();
      }
      return;
    }
    if (isTyping(target)) {
      return;
    }
    var lower = event.key.toLowerCase();
    if (lower === "s" || lower === "f" || lower === "g") {
      // Anywhere on the page but in a text box.
      event.preventDefault();
      if (lower === "s") {
        openPanel("skip-panel", "select");
      } else if (lower === "f") {
        openPanel("flag-panel", "select");
      } else {
        toggleGuidelines();
      }
      return;
    }
    if (!inForm) {
      return;
    }
    var field = activeField() || (target === document.body ? firstOpenField(form) : null);
    if (/^[0-9]$/.test(event.key) && field) {
      if (choose(field, event.key)) {
        event.preventDefault();
      }
      return;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!activeField()) {
        focusField(firstOpenField(form));
      } else {
        move(form, field, event.key === "ArrowDown" ? 1 : -1);
      }
    }
  });

  // Start on the first field still to answer: on load, and after htmx brings the next item.
  function start() {
    var form = document.querySelector("form.rubric-form");
    if (form && !form.querySelector(".has-error")) {
      focusField(firstOpenField(form));
    } else if (form) {
      focusField(form.querySelector(".has-error"));
    }
    var panel = document.getElementById("guidelines");
    try {
      if (panel && panel.hidden && window.localStorage.getItem("medharm.guidelines") === "shown") {
        toggleGuidelines();
      }
    } catch (error) { /* no storage: keep the default */ }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    // A flag's confirmation replaces only its status line: the annotator stays where they were.
    if (target && target.id !== "flag-status") {
      var form = document.querySelector("form.rubric-form");
      if (form) {
        focusField(form.querySelector(".has-error") || firstOpenField(form));
      } else {
        var done = document.querySelector(".ws-done h2");
        if (done) {
          done.setAttribute("tabindex", "-1");
          done.focus();
        }
      }
    }
  });

  // A refused label (422) carries the form with its errors: show it instead of dropping it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
