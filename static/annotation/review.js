// Keyboard-first review: j/k move, 1/2/3 verdict, e edit, Enter save, Esc cancel, v verify.
// Drag and drop reorders; active time on the page is reported when the reader leaves it.
(() => {
  "use strict";
  const root = document.querySelector(".review");
  if (!root) return;
  let current = null;
  const rows = () => Array.from(document.querySelectorAll("#steps > li.step"));
  const currentRow = () => (current && document.getElementById("step-" + current)) || null;

  function setCurrent(row, focus = true) {
    if (!row) return;
    current = row.dataset.step;
    rows().forEach((r) => r.classList.toggle("current", r === row));
    if (focus) { row.focus({ preventScroll: true }); row.scrollIntoView({ block: "nearest" }); }
    showEvidence(row);
  }

  // The report sentence a step rests on (data-evidence-*: offsets into the report text) is
  // marked while the step is current, and its report opened.
  function showEvidence(row) {
    document.querySelectorAll("mark.evidence").forEach((mark) => {
      const parent = mark.parentNode;
      parent.replaceChild(document.createTextNode(mark.textContent), mark);
      parent.normalize();
    });
    const which = row.dataset.evidenceReport;
    if (which !== "current" && which !== "prior") return;
    const text = document.querySelector(`.report-text[data-report="${which}"]`);
    const node = text && text.firstChild;
    const start = Number(row.dataset.evidenceStart), end = Number(row.dataset.evidenceEnd);
    if (!node || node.nodeType !== Node.TEXT_NODE || !(start >= 0 && end > start && end <= node.length)) return;
    const range = document.createRange();
    range.setStart(node, start);
    range.setEnd(node, end);
    const mark = document.createElement("mark");
    mark.className = "evidence";
    range.surroundContents(mark);
    text.closest("details").open = true;
  }

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t.matches("textarea, input:not([type=hidden]), select, [contenteditable]")) {
      if (e.key === "Escape") {
        const cancel = t.closest("li.step")?.querySelector("[data-action=cancel]");
        e.preventDefault();
        if (cancel) cancel.click(); else t.blur();
      } else if (e.key === "Enter" && !e.shiftKey && t.matches("textarea[name=text]")) {
        e.preventDefault();
        t.form.requestSubmit();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const list = rows();
    const row = currentRow();
    const i = list.indexOf(row);
    switch (e.key) {
      case "j": setCurrent(list[Math.min(i + 1, list.length - 1)]); break;
      case "k": setCurrent(list[Math.max(i - 1, 0)]); break;
      case "1": case "2": case "3":
        if (!row) return;
        row.querySelector(`button[aria-keyshortcuts="${e.key}"]`)?.click(); break;
      case "e": if (!row) return; row.querySelector("[data-action=edit]")?.click(); break;
      case "v": document.querySelector("[data-action=verify]")?.click(); break;
      default: return;
    }
    e.preventDefault();
  });

  document.addEventListener("focusin", (e) => {
    const row = e.target.closest && e.target.closest("li.step");
    if (row) setCurrent(row, false);
  });

  // After a swap the old row is gone: put the focus back where the reader was.
  // Only a swap of that row (or around it) moves the focus: another part of the page settling
  // (history, progress) must not move the caret of a reader who is already typing.
  document.body.addEventListener("htmx:afterSettle", (e) => {
    const row = currentRow();
    if (!row) return;
    row.classList.add("current");
    const swapped = e.target;
    if (swapped instanceof Element && swapped !== document.body && !swapped.contains(row) && !row.contains(swapped)) return;
    const area = row.querySelector("textarea[name=text]");
    if (area) editHere(area);
    else if (!row.contains(document.activeElement)) row.focus({ preventScroll: true });
  });
  // An editor arriving in a swap takes the focus with the caret at the end in the same task as
  // the swap, before the browser's own autofocus: keys typed at once are never split by a later
  // caret move (settling comes 20 ms after the swap).
  document.body.addEventListener("htmx:afterSwap", () => {
    const area = currentRow()?.querySelector("textarea[name=text]");
    if (area) editHere(area);
  });
  function editHere(area) {
    if (document.activeElement === area) return;  // already there: leave the caret alone
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  // The history panel reloads after a change only while it is open.
  document.body.addEventListener("chainChanged", () => {
    const panel = document.querySelector("details.history");
    if (panel && panel.open && window.htmx) window.htmx.trigger(panel, "refresh");
  });

  // Drag and drop: the new order goes through the same hidden form as any other change.
  let dragged = null;
  document.addEventListener("dragstart", (e) => {
    const row = e.target.closest && e.target.closest("li.step[draggable=true]");
    if (!row) return;
    dragged = row; row.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", row.dataset.step);
  });
  document.addEventListener("dragover", (e) => {
    const row = e.target.closest && e.target.closest("li.step");
    if (!dragged || !row) return;
    e.preventDefault();
    rows().forEach((r) => r.classList.toggle("drop-target", r === row && r !== dragged));
  });
  document.addEventListener("dragend", () => {
    rows().forEach((r) => r.classList.remove("drop-target", "dragging"));
    dragged = null;
  });
  document.addEventListener("drop", (e) => {
    const row = e.target.closest && e.target.closest("li.step");
    if (!dragged || !row || row === dragged) return;
    e.preventDefault();
    const order = rows().map((r) => r.dataset.step).filter((id) => id !== dragged.dataset.step);
    order.splice(order.indexOf(row.dataset.step), 0, dragged.dataset.step);
    const form = document.getElementById("reorder-form");
    form.querySelectorAll("input[name=order]").forEach((n) => n.remove());
    for (const id of order) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = "order"; input.value = id;
      form.appendChild(input);
    }
    form.requestSubmit();
  });

  root.dataset.ready = "1";  // keys and buttons are live (browser tests wait for this)

  // Active time: counted only while the page is visible.
  if (root.dataset.canReview !== "1") return;
  let active = 0;
  let since = document.visibilityState === "visible" ? performance.now() : null;
  const take = () => {
    if (since !== null) { active += performance.now() - since; since = performance.now(); }
    const seconds = active / 1000; active = 0;
    return seconds;
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") since = performance.now();
    else { if (since !== null) active += performance.now() - since; since = null; }
  });
  document.addEventListener("submit", (e) => {
    const field = e.target.querySelector && e.target.querySelector("input[name=seconds]");
    if (field) field.value = take().toFixed(1);
  }, true);
  document.body.addEventListener("htmx:configRequest", (e) => {
    if ("seconds" in e.detail.parameters) e.detail.parameters.seconds = take().toFixed(1);
  });
  window.addEventListener("pagehide", () => {
    const seconds = take();
    if (seconds < 0.5) return;
    const data = new FormData();
    data.append("seconds", seconds.toFixed(1));
    data.append("csrfmiddlewaretoken", JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]);
    navigator.sendBeacon(root.dataset.timeUrl, data);
  });
})();
