// @ts-check
// ReceptiveFieldTable: layer, size and stride for one model or two side by side (paper Tables 1-2).
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
    el.appendChild(root);
    function render() {
      root.replaceChildren();
      if (model.get("error")) {
        const e = document.createElement("div"); e.className = "cnnviz-error"; e.setAttribute("role", "alert");
        e.textContent = model.get("error"); root.appendChild(e); root.dataset.ready = "1"; return;
      }
      model.get("models").forEach((label, m) => {
        const table = document.createElement("table");
        const cap = document.createElement("caption"); cap.textContent = label; table.appendChild(cap);
        const head = table.insertRow();
        // the size is the theoretical field (Tables 1-2); where it is wider than the picture, the effective one beside it
        const eff = (model.get("effective") || [])[m] || [];
        const wide = eff.some(Boolean);
        const side = (model.get("input_sizes") || [])[m];
        for (const t of ["layer", "size", "stride", ...(wide ? [`effective${side ? ` (${side} px picture)` : ""}`] : [])]) {
          const th = document.createElement("th"); th.textContent = t; head.appendChild(th);
        }
        model.get("rows")[m].forEach(([name, kind, size, stride], i) => {
          const tr = table.insertRow();
          tr.className = kind + (name === model.get("layer") ? " active" : "");
          for (const v of [name, size, stride, ...(wide ? [eff[i] || ""] : [])]) tr.insertCell().textContent = String(v);
          tr.addEventListener("click", () => { model.set("layer", name); model.save_changes(); });
        });
        root.appendChild(table);
      });
      root.dataset.ready = "1";
    }
    for (const t of ["rows", "models", "layer", "error", "effective"]) model.on(`change:${t}`, render);
    render();
  },
};
