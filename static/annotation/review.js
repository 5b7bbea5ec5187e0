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

  // The rows' classes (current, editing) are the script's: htmx must not put the old ones back
  // when it settles a swap, 20 ms after it, over what the reader did meanwhile.
  window.htmx.config.attributesToSettle = window.htmx.config.attributesToSettle.filter((name) => name !== "class");

  // The editor is already in the row, hidden: opening it is synchronous, so the keys typed
  // right after `e` land in it, and closing it (Esc) is too, so an `e` typed right after Esc
  // opens it again instead of landing in the editor being closed.
  const editorOf = (row) => (row && row.classList.contains("editing") && row.querySelector("form.edit textarea")) || null;
  function openEditor(row) {
    const area = row.querySelector("form.edit textarea");
    if (!area || area.readOnly) return;  // read-only: its edit is saving
    row.classList.add("editing");
    editHere(area);
  }
  function closeEditor(row) {
    const area = row.querySelector("form.edit textarea");
    row.classList.remove("editing");
    if (area) area.value = row.querySelector(".text").textContent;  // the draft is dropped
    row.focus({ preventScroll: true });
  }
  function editHere(area) {
    if (document.activeElement === area) return;  // already there: leave the caret alone
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t.matches("textarea, input:not([type=hidden]), select, [contenteditable]")) {
      if (e.isComposing) return;
      if (e.key === "Escape") {
        e.preventDefault();
        const row = t.closest("li.step");
        if (row && t.closest("form.edit")) closeEditor(row);
        else if (row) row.focus({ preventScroll: true });  // a step's note is saved on leaving it
        else t.blur();
      } else if (e.key === "Enter" && !e.shiftKey) {
        if (t.matches("textarea[name=text]")) {
          e.preventDefault();
          if (!t.form.reportValidity()) return;
          t.form.requestSubmit();
          // The values are taken (or the save queued): the keys go back to the row at once, so
          // `j 3` typed while it saves move on and wait for it like any other action.
          const row = t.closest("li.step.editing");
          if (row && t.form.matches("form.edit")) {
            t.readOnly = true;
            row.focus({ preventScroll: true });
          }
        } else if (t.matches("form.note input")) {
          // Leaving the note saves it (its change event), and the keys go back to the row.
          e.preventDefault();
          t.closest("li.step").focus({ preventScroll: true });
        }
        // Enter in the chain's note does nothing: the form's default button is disabled.
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
      case "e": if (!row) return; openEditor(row); break;
      case "v": document.querySelector("[data-action=verify]")?.click(); break;
      default: return;
    }
    e.preventDefault();
  });

  // Edit and Cancel are links to the page for a browser without this script.
  document.addEventListener("click", (e) => {
    const action = e.target.closest && e.target.closest("li.step [data-action=edit], li.step [data-action=cancel]");
    if (!action) return;
    e.preventDefault();
    const row = action.closest("li.step");
    if (action.dataset.action === "edit") openEditor(row); else closeEditor(row);
  });

  document.addEventListener("focusin", (e) => {
    const row = e.target.closest && e.target.closest("li.step");
    if (row) setCurrent(row, false);
  });

  // One write at a time. Every write sends the version the page last saw and moves it on, so a
  // second write sent before the first one's answer (a note saved as it loses the focus to a
  // click on a verdict, or `v` pressed right after the last verdict) would be refused as stale.
  // What the reader does meanwhile waits, in order, and goes once the answer is swapped in, with
  // the versions it brought; after a refusal it is dropped: the reader sees why and decides again.
  const inFlight = new Set();
  let waiting = [];
  let releasing = false;
  const isWrite = (elt, verb) => verb !== "get" && elt instanceof Element && elt.closest("#chain-panel") !== null;
  const FRESH = new Set(["csrfmiddlewaretoken", "version", "chain_version"]);
  document.body.addEventListener("htmx:confirm", (e) => {
    if (releasing || !isWrite(e.detail.elt, e.detail.verb) || (!inFlight.size && !waiting.length)) return;
    e.preventDefault();
    waiting.push(later(e.detail));
  });
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (!isWrite(e.detail.elt, e.detail.requestConfig.verb)) return;
    const xhr = e.detail.xhr;
    inFlight.add(xhr);
    // loadend comes after htmx's load handler, which swapped the answer in.
    xhr.addEventListener("loadend", () => {
      inFlight.delete(xhr);
      if (!(xhr.status >= 200 && xhr.status < 300)) waiting = [];
      while (!inFlight.size && waiting.length) {
        releasing = true;
        try { waiting.shift()(); } finally { releasing = false; }
      }
      // An editor still read-only was not swapped (a network error): the draft is the reader's again.
      if (!inFlight.size) document.querySelectorAll("#chain-panel form.edit textarea[readonly]").forEach((area) => { area.readOnly = false; });
    });
  });
  // The same action again on the elements now on the page, found by the URL they post to.
  function later(detail) {
    const elt = detail.elt;
    const url = elt.getAttribute("hx-post");
    const form = elt.closest("form");
    const submitter = elt === form ? detail.triggeringEvent && detail.triggeringEvent.submitter : null;
    const button = submitter ? Array.from(form.querySelectorAll("button")).indexOf(submitter) : -1;
    const values = form ? Array.from(new FormData(form)).filter(([name]) => !FRESH.has(name)) : [];
    return () => {
      const now = url && document.querySelector(`#chain-panel [hx-post="${CSS.escape(url)}"]`);
      if (!now) return;  // gone (a deleted step): nothing to do it on
      const nowForm = now.closest("form");
      if (nowForm) fill(nowForm, values);
      window.htmx.process(now.closest("li.step") || now);  // settling (which binds it) comes later
      if (now !== nowForm) now.click();
      else if (nowForm.querySelectorAll("button")[button]) nowForm.querySelectorAll("button")[button].click();
      else nowForm.requestSubmit();
    };
  }
  function fill(form, values) {
    for (const name of new Set(values.map(([n]) => n))) {
      const all = values.filter(([n]) => n === name).map(([, v]) => v);
      const field = form.elements.namedItem(name);
      if (field && !(field instanceof RadioNodeList) && field.type !== "hidden") { field.value = all[0]; continue; }
      form.querySelectorAll("input[type=hidden]").forEach((n) => { if (n.name === name) n.remove(); });
      for (const value of all) {
        const input = document.createElement("input");
        input.type = "hidden"; input.name = name; input.value = value;
        form.appendChild(input);
      }
    }
  }

  // What the reader is typing survives a swap made by another request: an open editor, a note
  // or a new step half written, with the caret where it was. The form that made the request is
  // the exception: the answer shows what became of it.
  let carried = [];
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    const target = e.detail.target;
    const from = e.detail.requestConfig && e.detail.requestConfig.elt;  // detail.elt is the target here
    const own = from instanceof Element ? from.closest("form") : null;
    carried = [];
    if (!(target instanceof Element) || !target.matches("#chain-panel, li.step")) return;
    target.querySelectorAll("form[hx-post] textarea, form[hx-post] input:not([type=hidden])").forEach((field) => {
      if (field.form === own) return;
      const editor = field.closest("form.edit") !== null;
      const editing = editor && field.closest("li.step.editing") !== null;
      const focused = field === document.activeElement;
      if (editor ? !editing : !focused && field.value === field.defaultValue) return;
      carried.push({
        url: field.form.getAttribute("hx-post"), name: field.name, value: field.value,
        start: field.selectionStart, end: field.selectionEnd, focused, editing,
      });
    });
  });
  function restore() {
    const list = carried;
    carried = [];
    for (const c of list) {
      const form = document.querySelector(`#chain-panel form[hx-post="${CSS.escape(c.url)}"]`);
      const field = form && form.elements.namedItem(c.name);
      if (!field || field instanceof RadioNodeList) continue;
      if (c.editing) form.closest("li.step").classList.add("editing");
      field.value = c.value;
      if (c.focused) {
        field.focus({ preventScroll: true });
        field.setSelectionRange(c.start, c.end);
      }
    }
  }

  // After a swap the old row is gone: put the focus back where the reader was, in the same task
  // as the swap, so keys typed at once are never split by a later caret move. Only focus lost
  // with the swapped content is put back: a reader typing elsewhere keeps the caret.
  document.body.addEventListener("htmx:afterSwap", () => {
    restore();
    const row = currentRow();
    if (!row) return;
    row.classList.add("current");
    const active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    const area = editorOf(row);
    if (area) editHere(area); else row.focus({ preventScroll: true });
  });

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

  const editing = document.querySelector("#steps > li.step.editing");
  if (editing) { setCurrent(editing, false); editHere(editorOf(editing)); }

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
  // A submission without htmx sends the field; htmx also sends Reject and Skip, whose clicks
  // submit no form. Time is added, never overwritten: a decision that waited for a write in
  // flight carries the time taken before it.
  document.addEventListener("submit", (e) => {
    const field = e.target.querySelector && e.target.querySelector("input[name=seconds]");
    if (field) field.value = ((Number(field.value) || 0) + take()).toFixed(1);
  }, true);
  document.body.addEventListener("htmx:configRequest", (e) => {
    const parameters = e.detail.parameters;  // htmx's FormData proxy: `in` does not see fields
    if (parameters.has("seconds")) parameters.seconds = ((Number(parameters.seconds) || 0) + take()).toFixed(1);
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
