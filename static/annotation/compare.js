// Side-by-side comparison: j or → opens the next case, k or ← the previous one.
(() => {
  "use strict";
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, select, textarea, [contenteditable]")) return;
    const id = { j: "next-case", ArrowRight: "next-case", k: "previous-case", ArrowLeft: "previous-case" }[event.key];
    const link = id && document.getElementById(id);
    if (link) {
      event.preventDefault();
      window.location.assign(link.href);
    }
  });
})();
