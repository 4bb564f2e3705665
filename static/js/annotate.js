// Keyboard-first labelling. A static file: the Content-Security-Policy forbids inline script.
//
// One keyboard model for every scale and choice, on query and response items alike:
//   1…9, then 0 for a tenth option, then letters: the option with that key (shown on each option)
//     in the highlighted field; the first option is always 1. Then on to the next field.
//   ↑ ↓        previous / next field.
//   Enter      submits from anywhere when every required field is answered; otherwise it points
//              at the first field still to answer. Shift+Enter is a new line in a text box.
//   R          into the text box (rationale, notes) on purpose; a click does the same.
//   Esc        out of any text box or panel, back to the rubric.
//   U          (or Backspace outside a text box) reopens the previous label of the session.
//   S F G      skip, flag, guidelines.
// Digits never go into a text box unless the annotator moved into it: choosing the last point of
// the rubric moves to the Submit button, never into the rationale. A key that means nothing here
// says so in a visible message instead of doing nothing.
// Nothing here is needed to label: without script the form is plain radio buttons and a button.
(function () {
  "use strict";

  // Never settle inline styles across swaps: the CSP forbids them, so copying one (even the empty
  // style="" a screenshot tool leaves on inputs) is only a violation report.
  if (window.htmx) {
    window.htmx.config.attributesToSettle = ["class", "width", "height"];
  }

  var flashTimer = null;

  function rubricForm() {
    return document.querySelector("form.rubric-form");
  }

  function choiceFields(form) {
    return Array.prototype.slice.call(form.querySelectorAll("fieldset.rubric-field")).filter(function (f) {
      return f.querySelector("input[type=radio]");
    });
  }

  function textField(form) {
    var field = form.querySelector("fieldset.rubric-field[data-kind=text]");
    return field ? field.querySelector("textarea") : null;
  }

  function activeField() {
    var element = document.activeElement;
    var field = element && element.closest ? element.closest("fieldset.rubric-field") : null;
    return field && field.querySelector("input[type=radio]") ? field : null;
  }

  function isTyping(element) {
    if (!element) {
      return false;
    }
    var tag = element.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && element.type !== "radio" && element.type !== "checkbox");
  }

  function fieldName(fieldset) {
    var name = fieldset.querySelector(".field-name");
    return name ? name.textContent.trim() : fieldset.getAttribute("data-field");
  }

  function flash(message) {
    var box = document.getElementById("key-flash");
    if (!box) {
      return;
    }
    box.textContent = message;
    box.classList.remove("shown");
    // Restart the animation on a repeated message.
    void box.offsetWidth;
    box.classList.add("shown");
    window.clearTimeout(flashTimer);
    flashTimer = window.setTimeout(function () {
      box.classList.remove("shown");
    }, 3500);
  }

  function focusField(fieldset) {
    if (!fieldset) {
      return;
    }
    var target = fieldset.querySelector("input[type=radio]:checked") || fieldset.querySelector("input[type=radio]");
    if (target) {
      target.focus({ preventScroll: true });
      fieldset.scrollIntoView({ block: "nearest" });
    }
  }

  function missingField(form) {
    var list = choiceFields(form);
    for (var i = 0; i < list.length; i += 1) {
      var required = list[i].querySelector("input[type=radio][required]");
      if (required && !list[i].querySelector("input[type=radio]:checked")) {
        return list[i];
      }
    }
    return null;
  }

  function firstOpenField(form) {
    return missingField(form) || choiceFields(form)[0] || null;
  }

  // Back to the rubric: the first field still to answer, or Submit when all are answered.
  function toRubric(form) {
    form = form || rubricForm();
    if (!form) {
      return;
    }
    var correcting = form.closest(".workspace.correcting");
    // A label reopened for correction starts on its first field: the annotator came to change it.
    var open = form.querySelector(".has-error") || missingField(form) || (correcting ? choiceFields(form)[0] : null);
    if (open && open.querySelector("input[type=radio]")) {
      focusField(open);
    } else if (open) {
      focusField(firstOpenField(form));
    } else {
      var submit = form.querySelector("button[type=submit]");
      if (submit) {
        submit.focus({ preventScroll: true });
      }
    }
  }

  function move(form, from, step) {
    var list = choiceFields(form);
    var index = list.indexOf(from);
    var next = list[index + step];
    if (next) {
      focusField(next);
      return true;
    }
    return false;
  }

  function choose(fieldset, key) {
    var input = fieldset.querySelector('input[type=radio][data-key="' + key + '"]');
    if (!input) {
      var hint = fieldset.querySelector(".keys-hint");
      flash("“" + key + "” is not an option of " + fieldName(fieldset) +
        (hint ? ": its keys are " + hint.textContent.trim() + "." : "."));
      return;
    }
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    fieldset.classList.remove("missing");
    var form = fieldset.closest("form");
    // On to the next choice; after the last one, to Submit (never into the text box).
    if (!move(form, fieldset, 1)) {
      var open = missingField(form);
      if (open) {
        focusField(open);
      } else {
        form.querySelector("button[type=submit]").focus({ preventScroll: true });
      }
    }
  }

  function trySubmit(form) {
    var open = missingField(form);
    if (open) {
      choiceFields(form).forEach(function (f) { f.classList.remove("missing"); });
      open.classList.add("missing");
      focusField(open);
      flash("Answer " + fieldName(open) + " first, then Enter submits.");
      return;
    }
    // A form that has just been swapped in may not be wired to htmx yet (that happens on settle):
    // wire it now, so a quick Enter never falls back to a full page submit.
    if (window.htmx) {
      window.htmx.process(form);
    }
    form.requestSubmit();
  }

  function closePanels() {
    document.querySelectorAll("details.ws-action[open]").forEach(function (panel) {
      panel.open = false;
    });
  }

  function openPanel(id, focusSelector) {
    var panel = document.getElementById(id);
    if (!panel) {
      return;
    }
    closePanels();
    panel.open = true;
    var target = panel.querySelector(focusSelector);
    if (target) {
      target.focus();
    }
  }

  function guidelinesSection(panel) {
    var workspace = document.getElementById("workspace");
    var type = workspace ? workspace.getAttribute("data-target") : "";
    var pattern = type === "query" ? /quer/i : /response/i;
    var headings = panel.querySelectorAll(".guideline-body h2, .guideline-body h3");
    for (var i = 0; i < headings.length; i += 1) {
      if (pattern.test(headings[i].textContent)) {
        return headings[i];
      }
    }
    return null;
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
    if (show) {
      // Open at the section for this kind of item.
      var section = guidelinesSection(panel);
      if (section) {
        panel.scrollTop += section.getBoundingClientRect().top - panel.getBoundingClientRect().top - 8;
      }
    }
    try {
      window.localStorage.setItem("medharm.guidelines", show ? "shown" : "hidden");
    } catch (error) { /* storage may be disabled: the panel just starts closed */ }
    toRubric();
  }

  function undo() {
    var workspace = document.getElementById("workspace");
    var url = workspace && workspace.getAttribute("data-undo-url");
    if (url && window.htmx) {
      window.htmx.ajax("GET", url, { target: "#workspace", swap: "outerHTML" });
    } else if (url) {
      window.location.assign(url);
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-toggle-guidelines]");
    if (button) {
      event.preventDefault();
      toggleGuidelines();
    }
  });

  document.addEventListener("keydown", function (event) {
    var form = rubricForm();
    if (!form || event.altKey || event.metaKey || event.defaultPrevented || event.isComposing) {
      return;
    }
    var target = event.target;
    var typing = isTyping(target);
    var inRubric = form.contains(target);

    if (event.key === "Escape") {
      if (typing || target.closest(".ws-action, #guidelines")) {
        event.preventDefault();
        if (typing) {
          target.blur();
        }
        closePanels();
        toRubric(form);
      }
      return;
    }

    if (event.key === "Enter") {
      if (event.shiftKey && target.tagName === "TEXTAREA") {
        return; // a new line
      }
      if (inRubric && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target === form ||
          target.tagName === "FIELDSET")) {
        event.preventDefault();
        trySubmit(form);
        return;
      }
      if (target.tagName === "BUTTON" || target.tagName === "A" || target.tagName === "SUMMARY" ||
          target.closest(".ws-action")) {
        return; // that control's own action (Submit, a link, the skip and flag forms)
      }
      event.preventDefault();
      trySubmit(form);
      return;
    }
    if (event.ctrlKey || typing) {
      return;
    }

    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === "s" || key === "f" || key === "g" || key === "r" || key === "u" || key === "Backspace") {
      event.preventDefault();
      if (key === "s") {
        openPanel("skip-panel", "select");
      } else if (key === "f") {
        openPanel("flag-panel", "select");
      } else if (key === "g") {
        toggleGuidelines();
      } else if (key === "r") {
        var text = textField(form);
        if (text) {
          text.focus();
        } else {
          flash("This rubric has no text box.");
        }
      } else {
        undo();
      }
      return;
    }
    if (key === "ArrowDown" || key === "ArrowUp") {
      event.preventDefault();
      var from = activeField();
      if (!from) {
        focusField(key === "ArrowUp" ? choiceFields(form).slice(-1)[0] : firstOpenField(form));
      } else {
        move(form, from, key === "ArrowDown" ? 1 : -1);
      }
      return;
    }
    if (key.length !== 1 || key === " ") {
      return; // Tab, arrows sideways, Space on a point: the browser's own behaviour
    }
    if (target.closest && target.closest(".ws-action, #guidelines") && !inRubric) {
      return;
    }
    event.preventDefault();
    if (!/^[0-9a-z]$/.test(key)) {
      flash("“" + event.key + "” is not a key of this screen: see the keys below the form.");
      return;
    }
    // Outside a field (on Submit, or nowhere), a key goes to the first field still to answer.
    var field = activeField() || missingField(form);
    if (!field) {
      flash("Every field is answered: Enter submits, ↑ goes back to a field, R to the text box.");
      return;
    }
    choose(field, key);
  });

  // Start on the first field still to answer: on load, and after htmx brings the next item.
  function start() {
    toRubric();
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
    if (target && target.id === "flag-status") {
      // The flag is sent: close its panel and go back to the rubric (a refused flag stays open).
      var status = document.getElementById("flag-status");
      if (status && status.classList.contains("ok")) {
        closePanels();
        toRubric();
      }
      return;
    }
    var active = document.activeElement;
    if (active && active.closest && active.closest("details.ws-action[open]")) {
      // A late settle (a progress or notice swap) never takes the cursor out of a panel the
      // annotator opened meanwhile (skip, flag, guidelines).
      return;
    }
    if (rubricForm()) {
      toRubric();
    } else {
      var done = document.querySelector(".ws-done h2");
      if (done) {
        done.setAttribute("tabindex", "-1");
        done.focus();
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
