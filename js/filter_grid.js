// @ts-check
// FilterGrid: one sprite sheet per page (each tile = one filter's top patches); paging, zoom,
// click a tile (a button: Tab, then Enter or Space) to select its filter; the selected filter's patches and reconstructions below.
import { PATCH_EDGE_NOTE, h, blobImage, cnnvizRoot, statusParts, staleMark, ruleControl, kernelWatch, textScale } from "./_shared.js";

/**
 * @typedef {import("./_shared.js").StatusTraits & import("./_shared.js").RuleTraits & {
 *   layer_names: string[], layer: string, filters: number[], k: number, page: number, page_size: number, n_pages: number,
 *   cell: number, columns: number, per_row: number, sheet: DataView, sheet_filters: number[],
 *   sheet_for: import("./_shared.js").FilterSelection, selected: import("./_shared.js").FilterSelection, detail: DataView,
 *   detail_for: import("./_shared.js").FilterSelection, detail_values: number[], note: string, switches: boolean[], field: string
 * }} Traits  the synced traits of widgets/filter_grid.py
 */

export default {
  /** @type {import("@anywidget/types").Render<Traits>} */
  render({ model, el }) {
    const root = cnnvizRoot(el, "Filters by their top patches");
    const { error, busy } = statusParts(model, root);
    textScale(model, root);
    const title = h("strong");
    const fieldLabel = h("span", { class: "cnnviz-note" });  // the field the patches are cropped to (effective or not)
    const prev = h("button", { text: "◀", "aria-label": "Previous page" });
    const next = h("button", { text: "▶", "aria-label": "Next page" });
    const pageLabel = h("span", { "aria-live": "polite" });  // said when the page turns (set only when it changes)
    const allFilters = h("button", { text: "all filters", "aria-label": "Show all filters, strongest first" });
    const zoom = h("input", { type: "range", min: "0.5", max: "4", step: "0.25", value: "2", "aria-label": "Zoom" });
    const sheetImg = blobImage({ alt: "filters of the layer, each shown by its top patches" });
    const mark = h("div", { class: "cnnviz-mark" });
    const numbers = h("div", { class: "cnnviz-numbers", role: "group", "aria-label": "Filters on this page" });  // the tiles' buttons
    const sheet = h("div", { class: "cnnviz-sheet" }, [sheetImg, numbers, mark]);
    // the sheet scrolls inside the widget when zoomed past its width: the widget never outgrows its cell
    const scroller = h("div", { class: "cnnviz-scroll" }, [sheet]);
    const detailImg = blobImage({ alt: "the selected filter's top patches and their reconstructions", class: "cnnviz-detail" });
    const detailLabel = h("span");
    const note = h("div", { class: "cnnviz-note" });
    const rule = ruleControl(model);
    root.append(error, h("div", { class: "cnnviz-row" }, [title, allFilters, prev, pageLabel, next, h("label", { text: "zoom " }, [zoom]),
                                                          rule, busy]),
                fieldLabel, note, scroller, h("div", { class: "cnnviz-figure" }, [detailLabel, detailImg]));
    const kernel = kernelWatch(el, root, "This is the page of filters as it was saved (zoom works); "
      + "another page, a filter's close-up and another rule need a running kernel.",
      [prev, next, allFilters, /** @type {HTMLSelectElement} */ (rule.querySelector("select"))], () => { renderDetail(); });
    // the display, the patches' flat edges, and why deconvnet reconstructions without switches look alike
    const renderNote = () => {
      const layer = model.get("layer"), i = (model.get("layer_names") || []).indexOf(layer);
      const d = model.get("detail_for") || {};
      const by = d.layer === layer && d.drawn ? d.drawn.split(" ")[0] : model.get("rule");  // "auto" draws no switch-less deep layer by the deconvnet
      const noSwitch = by === "deconvnet" && (model.get("switches") || [])[i] === false;
      // effective-field patches are moved inside the photo: no flat padding at their edges to explain
      const moved = (model.get("field") || "").includes("effective field");
      note.textContent = [model.get("note"), model.get("display"), moved ? "" : PATCH_EDGE_NOTE,
        noSwitch ? `no max-pool lies below ${layer}: the deconvnet takes nothing from a patch but this layer's activations (no switches), so its reconstructions look alike; the guided rule follows the patch` : ""]
        .filter(Boolean).join(" · ");
      root.dataset.noSwitches = noSwitch ? "1" : "";
    };

    const geometry = () => {
      const tile = model.get("per_row") * (model.get("cell") + 1) - 1;
      return { tile, step: tile + 6, columns: model.get("columns") };
    };
    // zoom: the slider's value, until the user moves it the largest at which a full row of tiles fits the
    // widget's width (at most 2): tiles keep one size on every page, a short last page included
    let zoomChosen = false;
    function fitZoom() {
      const { step, columns } = geometry();
      const avail = root.clientWidth - 12, natural = columns * step - 6;
      if (zoomChosen || !sheetImg.naturalWidth || avail <= 0) return;
      zoom.value = String(Math.max(0.5, Math.min(2, Math.floor(4 * avail / natural) / 4)));
    }
    function applyZoom() {
      fitZoom();
      if (sheetImg.naturalWidth) sheetImg.style.width = `${sheetImg.naturalWidth * Number(zoom.value)}px`;
      place();
    }
    function place() {
      const z = Number(zoom.value);
      const { tile, step, columns } = geometry();
      const at = (/** @type {number} */ i) => ({ left: (i % columns) * step * z, top: Math.floor(i / columns) * step * z });
      const shown = model.get("sheet_filters") || [];
      const s = model.get("selected") || {};
      // the buttons are made again only for other filters, so the one with the keyboard keeps it
      if (tiles.length !== shown.length || tiles.some((t, i) => t.dataset.filter !== String(shown[i]))) {
        tiles = shown.map((f, i) => {
          const b = h("button", { class: "cnnviz-tile", "data-filter": String(f), "aria-label": `filter ${f}` },
                      [h("span", { class: "cnnviz-tile-no", text: String(f), "aria-hidden": "true" })]);
          b.addEventListener("click", () => pick(f));
          b.addEventListener("keydown", (ev) => {  // arrow keys move between tiles (not the page): a grid of buttons
            const cols = model.get("columns");
            const to = { ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + cols, ArrowUp: i - cols }[ev.key];
            if (to === undefined) return;
            ev.preventDefault(); ev.stopPropagation();
            if (tiles[to]) tiles[to].focus();
          });
          return b;
        });
        numbers.replaceChildren(...tiles);
      }
      tiles.forEach((b, i) => {
        const p = at(i);
        Object.assign(b.style, { left: `${p.left}px`, top: `${p.top}px`, width: `${tile * z}px`, height: `${tile * z}px` });
        b.setAttribute("aria-pressed", String(s.filter === shown[i] && s.layer === model.get("layer")));
      });
      const i = s.filter === undefined ? -1 : shown.indexOf(s.filter);
      if (i < 0 || s.layer !== model.get("layer")) { mark.style.display = "none"; return; }
      const p = at(i);
      Object.assign(mark.style, { display: "block", left: `${p.left - 2}px`, top: `${p.top - 2}px`, width: `${tile * z}px`, height: `${tile * z}px` });
    }
    /** @type {HTMLButtonElement[]} */
    let tiles = [];
    /** @param {number} f */
    function pick(f) {
      if (!kernel.live()) return;
      model.set("selected", { layer: model.get("layer"), filter: f });
      model.save_changes();
      markStale();
    }
    /** @param {HTMLElement} node  @param {string} text  set only when it changes: a live region speaks on each set */
    const say = (node, text) => { if (node.textContent !== text) node.textContent = text; };
    function renderSheet() {
      sheetImg.setPNG(model.get("sheet"));
      const done = () => { applyZoom(); root.dataset.ready = "1"; };
      if (sheetImg.complete && sheetImg.naturalWidth) done(); else sheetImg.onload = done;
      const f = model.get("filters") || [];
      say(title, `${model.get("layer")}: ${f.length ? `filters ${f.join(", ")}` : "all filters, strongest first"}`);
      const shown = model.get("sheet_filters") || [];
      sheetImg.alt = shown.length ? `filters ${shown[0]} to ${shown[shown.length - 1]} of ${model.get("layer")}, each shown by its top patches`
        : `no filters of ${model.get("layer")} on this page`;
      fieldLabel.textContent = model.get("field") || "";
      root.dataset.field = (model.get("field") || "").includes("effective field") ? "effective" : "theoretical";
      allFilters.style.display = f.length ? "" : "none";  // the way back once a map (or a cell) chose some
      say(pageLabel, `page ${model.get("page") + 1} of ${model.get("n_pages")}`);
      root.dataset.filters = (model.get("sheet_filters") || []).join(",");
    }
    function renderDetail() {
      detailImg.setPNG(model.get("detail"));
      const s = model.get("selected") || {};
      const d = model.get("detail_for") || {};
      detailLabel.textContent = s.filter !== undefined ? `filter ${s.filter}: top patches (above) and their ${d.drawn || d.rule || model.get("rule")} reconstructions (below)`
        : kernel.live() ? "click a filter" : "a filter's close-up needs a running kernel";
      root.dataset.selected = s.filter !== undefined ? String(s.filter) : "";
      detailImg.alt = s.filter !== undefined ? `filter ${s.filter} of ${s.layer}: its top patches and their ${d.drawn || d.rule || model.get("rule")} reconstructions` : "";
      place();
    }
    const go = (/** @type {number} */ d) => { if (!kernel.live()) return; const p = Math.min(model.get("n_pages") - 1, Math.max(0, model.get("page") + d)); model.set("page", p); model.save_changes(); };
    prev.addEventListener("click", () => go(-1));
    allFilters.addEventListener("click", () => { model.set("filters", []); model.save_changes(); });
    next.addEventListener("click", () => go(1));
    zoom.addEventListener("input", () => { zoomChosen = true; applyZoom(); });
    const resized = new ResizeObserver(() => { if (!zoomChosen) applyZoom(); });
    resized.observe(root);
    root.addEventListener("keydown", (ev) => {
      // the zoom slider (and the rule's select) keep their own keys: arrows zoom there, they do not page the grid
      if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
      if (ev.key === "PageDown" || ev.key === "ArrowRight") { go(1); ev.preventDefault(); ev.stopPropagation(); }
      if (ev.key === "PageUp" || ev.key === "ArrowLeft") { go(-1); ev.preventDefault(); ev.stopPropagation(); }
    });
    // the sheet answers sheet_for and the detail answers detail_for: dimmed while a newer view is on its way
    const markStale = () => {
      const f = model.get("sheet_for") || {}, d = model.get("detail_for") || {}, s = model.get("selected") || {};
      staleMark(root, [sheet], () => f.layer !== model.get("layer") || f.page !== model.get("page"));
      detailImg.classList.toggle("cnnviz-stale", s.filter !== undefined && (d.filter !== s.filter || d.layer !== s.layer || d.rule !== model.get("rule")));
    };
    for (const t of ["sheet", "sheet_filters", "page", "n_pages", "filters", "layer", "field"]) model.on(`change:${t}`, renderSheet);
    for (const t of ["detail", "selected", "detail_for"]) model.on(`change:${t}`, renderDetail);
    for (const t of ["sheet_for", "detail_for", "layer", "page", "selected", "rule"]) model.on(`change:${t}`, markStale);
    for (const t of ["note", "display", "layer", "rule", "switches", "detail_for", "field"]) model.on(`change:${t}`, renderNote);
    renderSheet(); renderDetail(); markStale(); renderNote();
    return () => { sheetImg.release(); detailImg.release(); resized.disconnect(); kernel.dispose(); };
  },
};
