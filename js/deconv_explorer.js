// DeconvExplorer: input image, a strip of per-layer deconvnet reconstructions, a layer slider.
// Self-contained (anywidget loads it from a Blob URL, so no relative imports). Text from data is
// always set with textContent. All reconstructions arrive once as PNG buffers: moving the slider
// only swaps object URLs that already exist, with no kernel round-trip.

const CSS = `
.cnnviz { font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, #222); background: var(--jp-layout-color0, #fff); padding: 6px; outline: none; }
.cnnviz:focus-visible { box-shadow: 0 0 0 2px var(--jp-brand-color1, #1976d2); }
.cnnviz-row { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin: 4px 0; }
.cnnviz-main { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
.cnnviz-figure { display: flex; flex-direction: column; align-items: center; gap: 2px; }
.cnnviz-figure img { width: 300px; height: 300px; image-rendering: auto; border: 1px solid var(--jp-border-color2, #ddd); }
.cnnviz-big { cursor: crosshair; }
.cnnviz-strip { display: flex; gap: 3px; overflow-x: auto; padding: 4px 0; }
.cnnviz-thumb { display: flex; flex-direction: column; align-items: center; cursor: pointer; font-size: 11px; }
.cnnviz-thumb img { width: 72px; height: 72px; border: 2px solid transparent; }
.cnnviz-thumb.active img { border-color: var(--jp-brand-color1, #1976d2); }
.cnnviz-error { color: var(--jp-error-color1, #d32f2f); background: var(--jp-error-color3, #fdecea);
  padding: 6px; border-radius: 3px; white-space: pre-wrap; }
.cnnviz-busy { color: var(--jp-ui-font-color2, #666); }
.cnnviz-preds { margin: 0; padding-left: 0; list-style: none; min-width: 180px; }
.cnnviz-preds li { display: flex; gap: 6px; align-items: center; }
.cnnviz-bar { height: 8px; background: var(--jp-brand-color1, #1976d2); }
`;

function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.appendChild(c);
  return node;
}

function pngURL(view) {
  if (!view || view.byteLength === 0) return "";
  return URL.createObjectURL(new Blob([view], { type: "image/png" }));
}

export default {
  render({ model, el }) {
    if (!document.getElementById("cnnviz-style")) {
      document.head.appendChild(h("style", { id: "cnnviz-style", text: CSS }));
    }
    const root = h("div", { class: "cnnviz", tabindex: "0", "data-lm-suppress-shortcuts": "true",
                            role: "group", "aria-label": "Deconvnet explorer" });
    const error = h("div", { class: "cnnviz-error", role: "alert" });
    const busy = h("span", { class: "cnnviz-busy", "aria-live": "polite" });
    const picker = h("select", { "aria-label": "Image" });
    const slider = h("input", { type: "range", min: "0", step: "1", "aria-label": "Layer" });
    const layerLabel = h("strong", { "aria-live": "polite" });
    const inputImg = h("img", { alt: "input image" });
    const bigImg = h("img", { class: "cnnviz-big", alt: "reconstruction of the selected layer" });
    const unitImg = h("img", { alt: "reconstruction of the clicked unit" });
    const bigCaption = h("span");
    const unitCaption = h("span", { text: "click the reconstruction to see one unit" });
    const preds = h("ol", { class: "cnnviz-preds", "aria-label": "Top-5 predictions" });
    const strip = h("div", { class: "cnnviz-strip", role: "listbox", "aria-label": "All layers" });
    root.append(
      error,
      h("div", { class: "cnnviz-row" }, [h("label", { text: "image " }, [picker]),
        h("label", { text: "layer " }, [slider]), layerLabel, busy]),
      h("div", { class: "cnnviz-main" }, [
        h("div", { class: "cnnviz-figure" }, [inputImg, h("span", { text: "input" })]),
        h("div", { class: "cnnviz-figure" }, [bigImg, bigCaption]),
        h("div", { class: "cnnviz-figure" }, [unitImg, unitCaption]),
        preds,
      ]),
      strip,
    );
    el.appendChild(root);

    let urls = [];
    let inputURL = "";
    let unitURL = "";
    let thumbs = [];

    const names = () => model.get("layer_names") || [];
    function showLayer(i, sync) {
      const n = names();
      if (!n.length) return;
      i = Math.max(0, Math.min(n.length - 1, i));
      slider.value = String(i);
      layerLabel.textContent = n[i];
      bigCaption.textContent = `layer ${n[i]}`;
      if (urls[i]) bigImg.src = urls[i];
      thumbs.forEach((t, j) => { t.classList.toggle("active", j === i); t.setAttribute("aria-selected", j === i); });
      root.dataset.shownLayer = n[i];
      if (sync && model.get("layer") !== n[i]) { model.set("layer", n[i]); model.save_changes(); }
    }
    function renderImages() {
      urls.forEach((u) => URL.revokeObjectURL(u));
      urls = (model.get("recs") || []).map(pngURL);
      if (inputURL) URL.revokeObjectURL(inputURL);
      inputURL = pngURL(model.get("input_png"));
      inputImg.src = inputURL;
      strip.replaceChildren();
      thumbs = names().map((name, i) => {
        const t = h("div", { class: "cnnviz-thumb", role: "option" }, [h("img", { src: urls[i] || "", alt: name }), h("span", { text: name })]);
        t.addEventListener("click", () => showLayer(i, true));
        strip.appendChild(t);
        return t;
      });
      slider.max = String(Math.max(0, names().length - 1));
      showLayer(Math.max(0, names().indexOf(model.get("layer"))), false);
      const ready = () => { root.dataset.ready = "1"; };
      if (bigImg.complete && bigImg.naturalWidth > 0) ready(); else bigImg.onload = ready;
    }
    function renderPicker() {
      picker.replaceChildren(...(model.get("image_names") || []).map((n, i) => h("option", { value: String(i), text: n })));
      picker.value = String(model.get("image_index"));
    }
    function renderUnit() {
      if (unitURL) URL.revokeObjectURL(unitURL);
      unitURL = pngURL(model.get("unit_png"));
      unitImg.src = unitURL || "";
      unitImg.style.visibility = unitURL ? "visible" : "hidden";
      const s = model.get("selected") || {};
      unitCaption.textContent = s.unit ? `${s.layer} filter ${s.unit[0]} at (${s.unit[1]}, ${s.unit[2]})` : "click the reconstruction to see one unit";
      root.dataset.unit = s.unit ? s.unit.join(",") : "";
    }
    function renderPreds() {
      preds.replaceChildren(...(model.get("predictions") || []).map(([label, p]) =>
        h("li", {}, [h("span", { class: "cnnviz-bar", style: `width:${Math.round(80 * p) + 2}px` }), h("span", { text: `${label} ${(100 * p).toFixed(1)}%` })])));
    }
    function renderState() {
      const e = model.get("error");
      error.textContent = e;
      error.style.display = e ? "block" : "none";
      root.dataset.error = e ? "1" : "";
      busy.textContent = model.get("busy") ? `working… ${Math.round(100 * model.get("progress"))}%` : "";
      root.setAttribute("aria-busy", model.get("busy") ? "true" : "false");
    }

    slider.addEventListener("input", () => showLayer(Number(slider.value), true));
    picker.addEventListener("change", () => { model.set("image_index", Number(picker.value)); model.save_changes(); });
    root.addEventListener("keydown", (ev) => {
      if (ev.target === picker) return;
      const i = Number(slider.value);
      if (ev.key === "ArrowRight" || ev.key === "ArrowUp") { showLayer(i + 1, true); ev.preventDefault(); ev.stopPropagation(); }
      if (ev.key === "ArrowLeft" || ev.key === "ArrowDown") { showLayer(i - 1, true); ev.preventDefault(); ev.stopPropagation(); }
    });
    bigImg.addEventListener("click", (ev) => {
      const r = bigImg.getBoundingClientRect();
      const size = model.get("input_size");
      model.set("click", { layer: names()[Number(slider.value)], x: (ev.clientX - r.left) / r.width * size,
                           y: (ev.clientY - r.top) / r.height * size, t: Date.now() });
      model.save_changes();
    });

    model.on("change:recs", renderImages);
    model.on("change:input_png", renderImages);
    model.on("change:layer", () => { const i = names().indexOf(model.get("layer")); if (i >= 0 && String(i) !== slider.value) showLayer(i, false); });
    model.on("change:image_names", renderPicker);
    model.on("change:image_index", renderPicker);
    model.on("change:unit_png", renderUnit);
    model.on("change:selected", renderUnit);
    model.on("change:predictions", renderPreds);
    for (const t of ["error", "busy", "progress"]) model.on(`change:${t}`, renderState);
    renderPicker(); renderImages(); renderUnit(); renderPreds(); renderState();

    return () => {
      urls.forEach((u) => URL.revokeObjectURL(u));
      if (inputURL) URL.revokeObjectURL(inputURL);
      if (unitURL) URL.revokeObjectURL(unitURL);
    };
  },
};
