// ReceptiveFieldTable: layer, size and stride for one model or two side by side (paper Tables 1-2).
// Joined after _shared.js.
const CSS = `
.cnnviz-rf { font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, #222); display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.cnnviz-rf table { border-collapse: collapse; }
.cnnviz-rf th, .cnnviz-rf td { padding: 2px 8px; text-align: right; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.cnnviz-rf th { background: var(--jp-layout-color2, #eee); }
.cnnviz-rf tr.pool td { color: var(--jp-ui-font-color2, #666); }
.cnnviz-rf tr.active td { background: var(--jp-brand-color3, #bbdefb); }
.cnnviz-rf caption { font-weight: bold; padding: 4px; white-space: nowrap; }
`;
export default {
  render({ model, el }) {
    if (!document.getElementById("cnnviz-rf-style")) {
      const s = document.createElement("style"); s.id = "cnnviz-rf-style"; s.textContent = CSS; document.head.appendChild(s);
    }
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
        for (const t of ["layer", "size", "stride"]) { const th = document.createElement("th"); th.textContent = t; head.appendChild(th); }
        for (const [name, kind, size, stride] of model.get("rows")[m]) {
          const tr = table.insertRow();
          tr.className = kind + (name === model.get("layer") ? " active" : "");
          for (const v of [name, size, stride]) tr.insertCell().textContent = String(v);
          tr.addEventListener("click", () => { model.set("layer", name); model.save_changes(); });
        }
        root.appendChild(table);
      });
      root.dataset.ready = "1";
    }
    for (const t of ["rows", "models", "layer", "error"]) model.on(`change:${t}`, render);
    render();
  },
};
