// @ts-check
// ReceptiveFieldTable: layer, size and stride for one model or two side by side (paper Tables 1-2). A row is the
// current layer when clicked, or from the keyboard: each table is one tab stop, the arrow keys (Home, End) move
// between its rows and Enter or Space makes the focused one current (the synced ``layer``).
import { textScale } from "./_shared.js";
/**
 * @typedef {import("./_shared.js").StatusTraits & {
 *   models: string[], rows: [string, string, number, number][][], layer: string, effective: string[][], input_sizes: number[]
 * }} Traits  the synced traits of widgets/rf_table.py
 */

export default {
  /** @type {import("@anywidget/types").Render<Traits>} */
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "cnnviz-rf";
    root.setAttribute("aria-label", "Receptive fields");
    root.setAttribute("role", "group");
    el.appendChild(root);
    textScale(model, root);
    /** @param {string} name */
    const choose = (name) => { model.set("layer", name); model.save_changes(); };
    let focusRow = -1, focusTable = -1;  // where the keyboard was, so that it stays there when the table is made again
    function render() {
      root.replaceChildren();
      if (model.get("error")) {
        const e = document.createElement("div"); e.className = "cnnviz-error"; e.setAttribute("role", "alert");
        e.textContent = model.get("error"); root.appendChild(e); root.dataset.ready = "1"; return;
      }
      model.get("models").forEach((label, m) => {
        const table = document.createElement("table");
        const cap = document.createElement("caption"); cap.textContent = label; table.appendChild(cap);
        const head = table.createTHead().insertRow();
        const body = table.createTBody();
        // the size is the theoretical field (Tables 1-2); where it is wider than the picture, the effective one beside it
        const eff = (model.get("effective") || [])[m] || [];
        const wide = eff.some(Boolean);
        const side = (model.get("input_sizes") || [])[m];
        for (const t of ["layer", "size", "stride", ...(wide ? [`effective${side ? ` (${side} px picture)` : ""}`] : [])]) {
          const th = document.createElement("th"); th.textContent = t; th.scope = "col"; head.appendChild(th);
        }
        const rows = model.get("rows")[m];
        const current = rows.findIndex(([name]) => name === model.get("layer"));
        /** @type {HTMLTableRowElement[]} */
        const trs = rows.map(([name, kind, size, stride], i) => {
          const tr = body.insertRow();
          const here = i === current;
          tr.className = kind + (here ? " active" : "");
          if (here) tr.setAttribute("aria-current", "true");
          tr.tabIndex = i === (focusTable === m && focusRow >= 0 ? focusRow : Math.max(0, current)) ? 0 : -1;
          tr.dataset.layer = name;
          // the layer's name heads its row; a pool says so in words too (it is also set in italics)
          const th = document.createElement("th"); th.scope = "row"; th.textContent = name; tr.appendChild(th);
          if (kind === "pool") th.title = "a pooling layer";
          for (const v of [size, stride, ...(wide ? [eff[i] || ""] : [])]) tr.insertCell().textContent = String(v);
          tr.addEventListener("click", () => choose(name));
          return tr;
        });
        body.addEventListener("keydown", (ev) => {
          const at = trs.indexOf(/** @type {HTMLTableRowElement} */ (ev.target));
          if (at < 0) return;
          const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: trs.length - 1 }[ev.key];
          if (to !== undefined) {
            const t = trs[Math.max(0, Math.min(trs.length - 1, to))];
            trs.forEach((r) => { r.tabIndex = r === t ? 0 : -1; });
            t.focus();
          } else if (ev.key === "Enter" || ev.key === " ") {
            focusTable = m; focusRow = at;
            choose(rows[at][0]);
          } else return;
          ev.preventDefault(); ev.stopPropagation();
        });
        root.appendChild(table);
      });
      // the table is made again when the layer changes: the keyboard goes back to the row it was on
      if (focusTable >= 0) {
        const row = root.querySelectorAll("table")[focusTable]?.querySelectorAll("tbody tr")[focusRow];
        if (row instanceof HTMLElement) row.focus();
        focusTable = -1; focusRow = -1;
      }
      root.dataset.ready = "1";
    }
    for (const t of ["rows", "models", "layer", "error", "effective"]) model.on(`change:${t}`, render);
    render();
  },
};
