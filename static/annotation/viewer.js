// Image viewer: drag = window/level (instant CSS preview, then a full-bit-depth render from
// the server), shift-drag or right-drag = pan, wheel or +/- = zoom, Invert, Reset.
(() => {
  "use strict";
  for (const fig of document.querySelectorAll(".viewer")) setup(fig);

  function setup(fig) {
    const img = fig.querySelector("img");
    const stage = fig.querySelector(".stage");
    const label = fig.querySelector(".wl");
    const base = fig.dataset.renderUrl;
    const initial = { wc: parseFloat(fig.dataset.wc), ww: parseFloat(fig.dataset.ww) };
    const hasWindow = isFinite(initial.wc) && isFinite(initial.ww);
    const s = { zoom: 1, x: 0, y: 0, invert: false, wc: initial.wc, ww: initial.ww, shown: { ...initial } };

    const url = () => {
      const q = new URLSearchParams();
      if (hasWindow && (s.wc !== initial.wc || s.ww !== initial.ww)) { q.set("wc", s.wc.toFixed(1)); q.set("ww", s.ww.toFixed(1)); }
      if (s.invert) q.set("invert", "1");
      if (s.zoom > 1.5) q.set("size", "2048");
      const text = q.toString();
      return text ? `${base}?${text}` : base;
    };
    const paint = () => {
      img.style.transform = `translate(${s.x}px, ${s.y}px) scale(${s.zoom})`;
      // While dragging, approximate the new window on the 8-bit preview with CSS filters.
      let filter = "";
      if (hasWindow && (s.wc !== s.shown.wc || s.ww !== s.shown.ww)) {
        const contrast = s.shown.ww / s.ww;
        const brightness = 1 + (s.shown.wc - s.wc) / s.shown.ww;
        filter = `contrast(${contrast.toFixed(3)}) brightness(${Math.max(0, brightness).toFixed(3)})`;
      }
      img.style.filter = filter;
      if (label && hasWindow) label.textContent = `W ${Math.round(s.ww)} / L ${Math.round(s.wc)}`;
      fig.querySelector("[data-tool=invert]").setAttribute("aria-pressed", String(s.invert));
    };
    // Renders can finish out of order (a cold one after a cached one): only the latest asked
    // for is shown, with the window it was asked for, so the pixels always match the label.
    let latest = 0;
    const load = () => {
      const next = url();
      const asked = ++latest;
      if (img.getAttribute("src") === next) { fig.classList.remove("loading"); paint(); return; }
      fig.classList.add("loading");
      const shown = { wc: s.wc, ww: s.ww };
      const pending = new Image();
      pending.onload = () => {
        if (asked !== latest) return;
        img.src = next; s.shown = shown;
        fig.classList.remove("loading"); paint();
      };
      pending.src = next;
    };

    let drag = null;
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
    stage.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button !== 0, wc: s.wc, ww: s.ww, px: s.x, py: s.y };
      stage.setPointerCapture(e.pointerId);
    });
    stage.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (drag.pan) { s.x = drag.px + dx; s.y = drag.py + dy; }
      else if (hasWindow) {
        const scale = initial.ww / 300; // a 300-pixel drag spans the default window
        s.ww = Math.max(1, drag.ww + dx * scale);
        s.wc = drag.wc + dy * scale;
      }
      paint();
    });
    stage.addEventListener("pointerup", () => {
      const changed = drag && !drag.pan && (s.wc !== drag.wc || s.ww !== drag.ww);
      drag = null;
      if (changed) load();
    });
    stage.addEventListener("wheel", (e) => { e.preventDefault(); zoomBy(e.deltaY < 0 ? 1.2 : 1 / 1.2); }, { passive: false });
    const zoomBy = (factor) => {
      const before = s.zoom > 1.5;
      s.zoom = Math.min(16, Math.max(0.25, s.zoom * factor));
      if ((s.zoom > 1.5) !== before) load(); else paint();
    };
    fig.querySelector("[data-tool=zoom-in]").addEventListener("click", () => zoomBy(1.25));
    fig.querySelector("[data-tool=zoom-out]").addEventListener("click", () => zoomBy(0.8));
    fig.querySelector("[data-tool=invert]").addEventListener("click", () => { s.invert = !s.invert; load(); });
    fig.querySelector("[data-tool=reset]").addEventListener("click", () => {
      Object.assign(s, { zoom: 1, x: 0, y: 0, invert: false, wc: initial.wc, ww: initial.ww });
      load();
    });
    paint();
  }
})();
