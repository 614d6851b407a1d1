// Labeling page: keyboard shortcuts, time each item is visible, and the server's messages.
// Loaded (deferred) after htmx on every page; it does nothing where there is no answer form.
(function () {
  "use strict";

  const MESSAGE_AREA = "labeling-message";
  const TYPING = "textarea, input:not([type=radio]):not([type=checkbox]):not([type=hidden]), select, [contenteditable]";

  // Time the current item has been visible: paused while the tab is hidden, restarted for each new item.
  const clock = { visibleMs: 0, since: null };

  function startClock() {
    clock.visibleMs = 0;
    clock.since = document.visibilityState === "visible" ? performance.now() : null;
  }

  function visibleMilliseconds() {
    const running = clock.since === null ? 0 : performance.now() - clock.since;
    return Math.round(clock.visibleMs + running);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && clock.since !== null) {
      clock.visibleMs += performance.now() - clock.since;
      clock.since = null;
    } else if (document.visibilityState === "visible" && clock.since === null) {
      clock.since = performance.now();
    }
  });

  function answerForm() {
    return document.querySelector("form.answer-form");
  }

  function showMessage(text) {
    const area = document.getElementById(MESSAGE_AREA);
    if (!area) return;
    const p = document.createElement("p");
    p.className = "message error";
    p.textContent = text;
    area.replaceChildren(p);
    revealMessage();
  }

  // On a phone the labeler may have scrolled down to the buttons: bring what changed into view.
  function revealMessage() {
    const area = document.getElementById(MESSAGE_AREA);
    if (area && area.getBoundingClientRect().top < 0) area.scrollIntoView({ block: "start" });
  }

  function clearMessage() {
    const area = document.getElementById(MESSAGE_AREA);
    if (area) area.replaceChildren();
  }

  // The first item arrives with the page (this script is deferred, so the page is parsed by now); later
  // ones start their clock in the same task that swaps them in (htmx:afterSwap below).
  if (answerForm()) startClock();

  // Capture phase: runs before htmx reads the form, for clicks on Submit and for Enter alike.
  document.addEventListener(
    "submit",
    function (event) {
      const form = event.target;
      if (!form.matches("form.answer-form")) return;
      if (!form.querySelector("input[name=answer]:checked")) {
        event.preventDefault();
        event.stopPropagation();
        const keys = form.querySelectorAll("input[name=answer]").length === 3 ? "1, 2 or 3" : "1, 2, 3 or 4";
        showMessage("Choose an answer first (keys " + keys + ", or the buttons).");
        return;
      }
      form.elements.milliseconds.value = String(visibleMilliseconds());
      // htmx binds a swapped-in form only when the swap settles (about 20 ms later); an Enter in between
      // would post the form natively and reload the page. Binding it now (a no-op once bound) lets htmx
      // take this very submit: its listener on the form runs after this capture-phase one.
      if (window.htmx) window.htmx.process(form);
    },
    true,
  );

  document.addEventListener("keydown", function (event) {
    const form = answerForm();
    if (!form || event.defaultPrevented || event.isComposing) return;
    const target = event.target;
    if (target.closest && target.closest(TYPING)) {
      // Typing is typing: no shortcuts, except leaving the box and submitting from it.
      if (event.key === "Escape") {
        event.preventDefault();
        target.blur();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form.contains(target)) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Enter") {
      // Links, the instructions toggle and other forms' buttons keep their own Enter.
      if (!form.contains(target) && target.closest("a, summary, button")) return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : "";
    if (key === "r") {
      event.preventDefault();
      form.elements.rationale.focus();
      return;
    }
    const input = key && form.querySelector('input[data-key="' + CSS.escape(key) + '"]');
    if (input) {
      event.preventDefault();
      input.checked = true;
      clearMessage();
    }
  });

  document.body.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("form.answer-form input[name=answer]")) clearMessage();
  });

  // Our 4xx answers are messages meant for the message area (the server retargets them there). Keep them
  // from django-htmx's debug helper, which would replace the whole page with any 400 or 404.
  function isMessageResponse(xhr) {
    return xhr.status >= 400 && xhr.status < 500 && !!xhr.getResponseHeader("HX-Retarget");
  }

  document.body.addEventListener("htmx:beforeOnLoad", function (event) {
    if (isMessageResponse(event.detail.xhr)) event.stopPropagation();
  });

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (isMessageResponse(event.detail.xhr)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target.id === MESSAGE_AREA) revealMessage();
    if (target.id !== "work") return;
    if (answerForm()) startClock();
    clearMessage();
    if (target.getBoundingClientRect().top < 0) target.scrollIntoView({ block: "start" });
  });

  // A mouse click on the instructions toggle should not keep focus there, or Enter would toggle it
  // instead of submitting; keyboard users who tab onto it still get its own Enter.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("summary") && answerForm()) event.preventDefault();
  });

  document.body.addEventListener("htmx:responseError", function (event) {
    showMessage("Something went wrong (HTTP " + event.detail.xhr.status + "). Reload the page and try again.");
  });

  document.body.addEventListener("htmx:sendError", function () {
    showMessage("Could not reach the server: your answer was not sent. Check the connection and press Enter again.");
  });
})();
