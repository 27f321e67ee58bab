// @ts-check
// EmbeddingMap: the representation-space mosaic. Hover: the cell's patch large. Click: select the
// unit (the kernel sends its patch and strongest filters). Drag: zoom into the rectangle, which the
// kernel re-lays at full resolution. Back: the previous view. Pointer events, so a finger or a pen drags as a
// mouse does; and the keyboard: the map takes focus, the arrow keys move a cursor over its cells, Enter selects
// the cell's patch, + zooms into the half of the view around the cursor, - goes back.
import { PATCH_EDGE_NOTE, h, blobImage, cnnvizRoot, statusParts, staleMark, kernelWatch, textScale } from "./_shared.js";

/**
 * @typedef {import("./_shared.js").StatusTraits & {
 *   layer: string, shown_layer: string, grid: number, cell: number, mosaic: DataView, grid_index: number[][],
 *   region: number[], depth: number, selected: import("./_shared.js").PatchSelection, patch_png: DataView, filters: number[]
 * }} Traits  the synced traits of widgets/embedding_map.py
 */

export default {
  /** @type {import("@anywidget/types").Render<Traits>} */
  render({ model, el }) {
    const root = cnnvizRoot(el, "Representation space");
    const { error, busy } = statusParts(model, root);
    textScale(model, root);
    const title = h("strong");
    const back = h("button", { text: "◀ back", "aria-label": "back: zoom out to the previous view" });
    const mosaic = blobImage({ alt: "patches laid out by the similarity of their representations", draggable: "false" });
    const band = h("div", { class: "cnnviz-band" });
    const mark = h("div", { class: "cnnviz-mark" });
    const cursor = h("div", { class: "cnnviz-cursor", "aria-hidden": "true" });
    const cursorSaid = h("div", { class: "cnnviz-sr", "aria-live": "polite" });
    const sheet = h("div", { class: "cnnviz-sheet cnnviz-unitpick", tabindex: "0", role: "application", "aria-roledescription": "patch map",
      "aria-label": "the map of patches: arrow keys move a cursor over its cells, Enter selects the patch, + zooms in around the cursor, - zooms out" },
    [mosaic, band, mark, cursor, cursorSaid]);
    const hover = h("canvas", { class: "cnnviz-hover", width: "160", height: "160", role: "img", "aria-label": "the patch under the pointer, enlarged" });
    const chosen = blobImage({ class: "cnnviz-hover", alt: "the selected patch" });
    const info = h("span", { "aria-live": "polite" });
    const pending = h("span", { class: "cnnviz-notice" });
    const howTo = h("div", { class: "cnnviz-note" });
    root.append(error, h("div", { class: "cnnviz-row" }, [title, back, pending, busy]),
                howTo,
                h("div", { class: "cnnviz-main" }, [sheet, h("div", { class: "cnnviz-figure cnnviz-side" }, [hover, h("span", { text: "under the pointer or cursor" }), chosen, info])]));
    band.style.display = "none";
    const kernel = kernelWatch(el, root, "This is the map as it was saved (hover shows each patch); "
      + "selecting a patch, zooming and going back need a running kernel.", [back], () => { renderMosaic(); renderSelected(); });
    const renderHowTo = () => { howTo.textContent = `${model.get("note") ? `${model.get("note")} · ` : ""}${kernel.live() ? "drag a rectangle to zoom (a finger too), click a patch to select it; "
      + "or from the keyboard: arrows, Enter, + and - · " : ""}${PATCH_EDGE_NOTE}`; };

    const size = () => model.get("grid") * model.get("cell");
    /** @param {MouseEvent} ev  @returns {{ fx: number, fy: number, row: number, col: number }} */
    function cellAt(ev) {
      const r = mosaic.getBoundingClientRect();
      const g = model.get("grid");
      const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
      return { fx, fy, row: Math.min(g - 1, Math.max(0, Math.floor(fy * g))), col: Math.min(g - 1, Math.max(0, Math.floor(fx * g))) };
    }
    function renderMosaic() {
      mosaic.setPNG(model.get("mosaic"));
      const done = () => { mosaic.style.width = `${Math.max(360, Math.min(720, size()))}px`; root.dataset.ready = "1"; root.dataset.region = model.get("region").map((v) => v.toFixed(3)).join(","); root.dataset.grid = String(model.get("grid")); placeMark(); };
      if (mosaic.complete && mosaic.naturalWidth) done(); else mosaic.onload = done;
      mosaic.alt = `patches of ${model.get("shown_layer")} laid out by the similarity of their representations${model.get("depth") ? `, zoomed in ${model.get("depth")} times` : ""}`;
      placeCursor();
      title.textContent = `${model.get("shown_layer")}: ${model.get("grid")}×${model.get("grid")} patches` + (model.get("depth") ? ` (zoom ${model.get("depth")})` : "");
      markStale();
      back.disabled = !model.get("depth") || !kernel.live();
      renderHowTo();
    }
    // the mosaic belongs to shown_layer: while a linked slider has moved on, it is dimmed and labelled
    function markStale() {
      const s = staleMark(root, [sheet], () => model.get("shown_layer") !== model.get("layer"));
      pending.textContent = s ? (model.get("busy") ? `embedding ${model.get("layer")}…` : `still ${model.get("shown_layer")}`) : "";
    }
    // the mark follows the selected unit, not a grid position: after a zoom it sits on the cell that now
    // shows that unit (the clicked one if it still does), and disappears where no cell shows it
    function markedCell() {
      const s = model.get("selected") || {}, gi = model.get("grid_index") || [];
      if (s.unit === undefined) return null;
      if (s.cell && gi[s.cell[0]] && gi[s.cell[0]][s.cell[1]] === s.unit) return s.cell;
      for (let r = 0; r < gi.length; r++) { const c = gi[r].indexOf(s.unit); if (c >= 0) return [r, c]; }
      return null;
    }
    function placeMark() {
      const cell = markedCell(), gi = model.get("grid_index") || [];
      root.dataset.markCell = cell ? cell.join(",") : "";
      root.dataset.markUnit = cell ? String(gi[cell[0]][cell[1]]) : "";
      if (!cell) { mark.style.display = "none"; return; }
      const w = mosaic.getBoundingClientRect().width || 1, g = model.get("grid"), c = w / g;
      Object.assign(mark.style, { display: "block", left: `${cell[1] * c - 2}px`, top: `${cell[0] * c - 2}px`, width: `${c}px`, height: `${c}px` });
    }
    function renderSelected() {
      chosen.setPNG(model.get("patch_png"));
      const s = model.get("selected") || {};
      chosen.alt = s.unit !== undefined ? `the selected patch: ${s.image_name ?? `image ${s.image}`}, ${s.layer} map row ${s.y}, column ${s.x}` : "no patch selected yet";
      info.textContent = s.unit !== undefined ? `${s.image_name ?? `image ${s.image}`}, ${s.layer} map row ${s.y}, column ${s.x}; `
        + `strongest filters ${(model.get("filters") || []).join(", ")}` : kernel.live() ? "click a patch" : "selecting a patch needs a running kernel";
      root.dataset.selected = s.unit !== undefined ? String(s.unit) : "";
      placeMark();
    }
    /** @param {number} row  @param {number} col  the cell's patch, enlarged, beside the map */
    function showHover(row, col) {
      const cell = model.get("cell"), g = hover.getContext("2d");
      if (!g) return;
      g.imageSmoothingEnabled = false;
      if (mosaic.naturalWidth) g.drawImage(mosaic, col * cell, row * cell, cell, cell, 0, 0, 160, 160);
    }
    /** @type {{ fx: number, fy: number, row: number, col: number, x: number, y: number, id: number } | null} */
    let drag = null;
    mosaic.addEventListener("pointerdown", (ev) => {
      if (!kernel.live() || (ev.pointerType === "mouse" && ev.button !== 0)) return;
      drag = { ...cellAt(ev), x: ev.clientX, y: ev.clientY, id: ev.pointerId };
      try { mosaic.setPointerCapture(ev.pointerId); } catch { /* a pointer the browser does not track (a synthetic one) */ }
      ev.preventDefault();
    });
    mosaic.addEventListener("pointermove", (ev) => {
      const c = cellAt(ev);
      showHover(c.row, c.col);
      if (drag && ev.pointerId === drag.id) {
        const r = sheet.getBoundingClientRect();
        Object.assign(band.style, { display: "block", left: `${Math.min(drag.x, ev.clientX) - r.left}px`, top: `${Math.min(drag.y, ev.clientY) - r.top}px`,
                                    width: `${Math.abs(ev.clientX - drag.x)}px`, height: `${Math.abs(ev.clientY - drag.y)}px` });
      }
    });
    const onPointerUp = (/** @type {PointerEvent} */ ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const start = drag; drag = null; band.style.display = "none";
      const end = cellAt(ev);
      if (Math.abs(ev.clientX - start.x) < 6 && Math.abs(ev.clientY - start.y) < 6) {
        model.send({ event: "select", cell: [end.row, end.col] });
      } else {
        model.send({ event: "zoom", x0: start.fx, y0: start.fy, x1: end.fx, y1: end.fy });
      }
    };
    const onPointerCancel = (/** @type {PointerEvent} */ ev) => { if (drag && ev.pointerId === drag.id) { drag = null; band.style.display = "none"; } };
    window.addEventListener("pointerup", onPointerUp);
    window.addEventListener("pointercancel", onPointerCancel);
    // the keyboard's cursor: a cell of the grid on screen
    let cur = { row: 0, col: 0 };
    function placeCursor() {
      const g = model.get("grid") || 1;
      cur = { row: Math.max(0, Math.min(g - 1, cur.row)), col: Math.max(0, Math.min(g - 1, cur.col)) };
      Object.assign(cursor.style, { left: `${(100 * cur.col / g).toFixed(3)}%`, top: `${(100 * cur.row / g).toFixed(3)}%`,
                                    width: `${(100 / g).toFixed(3)}%`, height: `${(100 / g).toFixed(3)}%` });
      root.dataset.cursor = `${cur.row},${cur.col}`;
    }
    sheet.addEventListener("focus", () => { const m = markedCell(); if (m && !sheet.dataset.visited) cur = { row: m[0], col: m[1] }; sheet.dataset.visited = "1"; placeCursor(); showHover(cur.row, cur.col); });
    sheet.addEventListener("keydown", (ev) => {
      const g = model.get("grid");
      const move = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
      if (move) {
        cur.row += move[0]; cur.col += move[1];
        placeCursor();
        showHover(cur.row, cur.col);
        cursorSaid.textContent = `row ${cur.row}, column ${cur.col}`;
      } else if (ev.key === "Enter" || ev.key === " ") {
        if (kernel.live()) model.send({ event: "select", cell: [cur.row, cur.col] });
      } else if (ev.key === "+" || ev.key === "=") {
        const at = (/** @type {number} */ v) => Math.max(0, Math.min(0.5, (v + 0.5) / g - 0.25));
        const x0 = at(cur.col), y0 = at(cur.row);
        if (kernel.live()) model.send({ event: "zoom", x0, y0, x1: x0 + 0.5, y1: y0 + 0.5 });
      } else if (ev.key === "-" || ev.key === "Backspace") {
        if (kernel.live() && model.get("depth")) model.send({ event: "back" });
      } else return;
      ev.preventDefault(); ev.stopPropagation();
    });
    back.addEventListener("click", () => model.send({ event: "back" }));
    for (const t of ["mosaic", "region", "depth", "grid"]) model.on(`change:${t}`, renderMosaic);
    model.on("change:grid_index", placeMark);
    model.on("change:note", renderHowTo);
    for (const t of ["patch_png", "selected", "filters"]) model.on(`change:${t}`, renderSelected);
    for (const t of ["layer", "shown_layer", "busy"]) model.on(`change:${t}`, markStale);
    renderMosaic(); renderSelected();
    return () => {
      mosaic.release(); chosen.release(); kernel.dispose();
      window.removeEventListener("pointerup", onPointerUp); window.removeEventListener("pointercancel", onPointerCancel);
    };
  },
};
