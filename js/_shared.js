// Helpers shared by every cnnviz widget. Python joins this file with a widget's own file into one
// ES module (anywidget loads modules from a Blob URL, where relative imports cannot resolve).
// Text that came from data is only ever set with textContent.

const CNNVIZ_CSS = `
.cnnviz { box-sizing: border-box; max-width: 100%; font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, #222); background: var(--jp-layout-color0, #fff); padding: 6px; outline: none; }
.cnnviz:focus-visible { box-shadow: 0 0 0 2px var(--jp-brand-color1, #1976d2); }
.cnnviz-row { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin: 4px 0; }
.cnnviz-row label { display: inline-flex; align-items: center; gap: 4px; }
.cnnviz-main { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
.cnnviz-figure { display: flex; flex-direction: column; align-items: center; gap: 2px; }
.cnnviz-side { width: 260px; flex: none; }  /* a side panel keeps its width whatever its caption says */
.cnnviz-main .cnnviz-figure > span { max-width: 258px; min-height: 2.6em; text-align: center; }  /* captions wrap in place: nothing jumps */
.cnnviz-main .cnnviz-side { align-items: flex-start; }
.cnnviz-main .cnnviz-side > span { text-align: left; }
.cnnviz-figure img { width: 256px; height: 256px; border: 1px solid var(--jp-border-color2, #ddd); }
.cnnviz img.cnnviz-empty { background: var(--jp-layout-color2, #eee); }
.cnnviz-big { cursor: crosshair; }
.cnnviz-strip { display: flex; gap: 3px; overflow-x: auto; padding: 4px 0; }
.cnnviz-thumb { display: flex; flex-direction: column; align-items: center; cursor: pointer; font-size: 11px; width: 76px; flex: none; }
.cnnviz-thumb span { max-width: 76px; min-height: 2.4em; line-height: 1.2em; font-size: 10px; overflow-wrap: anywhere; text-align: center; }
.cnnviz-thumb img { width: 72px; height: 72px; border: 2px solid transparent; }
.cnnviz-thumb.active img { border-color: var(--jp-brand-color1, #1976d2); }
.cnnviz { position: relative; }
.cnnviz-error.cnnviz-over { position: absolute; left: 6px; right: 6px; top: 2.6em; z-index: 3; box-shadow: 0 2px 6px rgba(0,0,0,0.3); cursor: pointer; }
.cnnviz-frame { position: relative; display: inline-block; line-height: 0; }  /* a picture with a box drawn over it */
.cnnviz-error { color: var(--jp-error-color1, #d32f2f); background: var(--jp-error-color3, #fdecea);
  padding: 6px; border-radius: 3px; white-space: pre-wrap; }
.cnnviz-busy { color: var(--jp-ui-font-color2, #666); }
.cnnviz-preds { margin: 0; padding-left: 0; list-style: none; min-width: 180px; }
.cnnviz-preds li { display: flex; gap: 6px; align-items: center; }
.cnnviz-track { display: inline-block; flex: none; width: 80px; height: 8px; background: var(--jp-layout-color3, #ccc); }
.cnnviz-bar { display: block; height: 8px; min-width: 1px; background: var(--jp-brand-color1, #1976d2); }
.cnnviz-pred { display: flex; gap: 6px; align-items: center; border: 1px solid transparent; background: none; color: inherit;
  padding: 1px 3px; cursor: pointer; text-align: left; }
.cnnviz-pred:hover { background: var(--jp-layout-color2, #eee); }
.cnnviz-pred.active { border-color: var(--jp-brand-color1, #1976d2); }
.cnnviz-note { color: var(--jp-ui-font-color2, #666); font-size: 12px; max-width: 820px; margin-bottom: 4px; }
.cnnviz-sheet { position: relative; display: inline-block; line-height: 0; }
.cnnviz-sheet img { image-rendering: pixelated; }
.cnnviz-sheet img, img.cnnviz-detail { background: var(--jp-layout-color2, #eee); }  /* the sheets' clear gutters: a black patch keeps its edge in the dark theme */
.cnnviz-scroll { max-width: 100%; overflow-x: auto; }
.cnnviz-numbers { position: absolute; inset: 0; pointer-events: none; line-height: 12px; }
.cnnviz-tile-no { position: absolute; font-size: 10px; padding: 0 3px; color: #fff; background: rgba(0,0,0,0.6);
  border-radius: 0 0 3px 0; font-variant-numeric: tabular-nums; }
.cnnviz-mark { position: absolute; border: 2px solid var(--jp-brand-color1, #1976d2); pointer-events: none; }
.cnnviz-band { position: absolute; border: 2px solid #fff; outline: 2px solid #f57c00; background: rgba(245,124,0,0.2); pointer-events: none; }
.cnnviz-field { box-sizing: border-box; border-color: #fff; outline: 2px solid #f57c00; }
.cnnviz-figure img.cnnviz-detail { width: auto; height: auto; max-width: 100%; }  /* the strip keeps its own shape */
.cnnviz-figure img.cnnviz-detail.cnnviz-empty { display: none; }  /* nothing chosen yet: the caption says "click a filter" */
.cnnviz .cnnviz-hover, .cnnviz-figure img.cnnviz-hover { width: 160px; height: 160px; border: 1px solid var(--jp-border-color2, #ddd); image-rendering: pixelated;
  background: var(--jp-layout-color2, #eee); }
.cnnviz-compare-row { display: flex; gap: 8px; align-items: flex-start; flex-wrap: wrap; margin: 4px 0; }
.cnnviz-compare-name { display: block; margin-top: 8px; }
.cnnviz-compare-preds { flex: none; }  /* whole, on the row's right or under it: never cut to "jag" */
.cnnviz-compare-row img { width: 112px; height: 112px; border: 1px solid var(--jp-border-color2, #ddd); }
.cnnviz button { font: inherit; }
.cnnviz-stop { display: none; }
.cnnviz[aria-busy="true"] .cnnviz-stop { display: inline-block; }
.cnnviz-notice { color: var(--jp-ui-font-color2, #666); font-style: italic; }
.cnnviz-stale { opacity: 0.35; transition: opacity 0.15s; }
`;

// patches are receptive fields, which often cross the photo's edge
const PATCH_EDGE_NOTE = "flat colour at a patch's edge: outside the photo (the mean colour, what the network sees there)";

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

const EMPTY_IMAGE = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAIBAAA=";  // 1x1 transparent

// the picture's type from its first bytes: the kernel sends PNG, JPEG or BMP (raw pixels, the fastest to make)
function pictureType(view) {
  const b = new Uint8Array(view.buffer || view, view.byteOffset || 0, Math.min(2, view.byteLength));
  if (b[0] === 0xff && b[1] === 0xd8) return "image/jpeg";
  if (b[0] === 0x42 && b[1] === 0x4d) return "image/bmp";
  return "image/png";
}

function pngURL(view) {
  if (!view || view.byteLength === 0) return "";
  return URL.createObjectURL(new Blob([view], { type: pictureType(view) }));
}

// an <img> whose object URL is revoked whenever it is replaced (no leaks on long sessions)
function blobImage(props) {
  const img = h("img", props);
  let url = "";
  img.setPNG = (view) => {
    if (url) URL.revokeObjectURL(url);
    url = pngURL(view);
    img.src = url || EMPTY_IMAGE;
    img.classList.toggle("cnnviz-empty", !url);  // an empty panel shows as a neutral tile, not a gap
  };
  img.release = () => { if (url) URL.revokeObjectURL(url); url = ""; };
  return img;
}

function cnnvizRoot(el, label) {
  if (!document.getElementById("cnnviz-style")) document.head.appendChild(h("style", { id: "cnnviz-style", text: CNNVIZ_CSS }));
  const root = h("div", { class: "cnnviz", tabindex: "0", "data-lm-suppress-shortcuts": "true", role: "group", "aria-label": label });
  el.appendChild(root);
  return root;
}

// the error banner, the busy line with its Stop control, and the notice line every widget shows
function statusParts(model, root) {
  const error = h("div", { class: "cnnviz-error", role: "alert" });
  const label = h("span");
  const stop = h("button", { class: "cnnviz-stop", text: "■ stop", title: "Stop this computation (the previous result stays)",
                             "aria-label": "Stop the computation" });
  const notice = h("span", { class: "cnnviz-notice", "aria-live": "polite" });
  const busy = h("span", { class: "cnnviz-busy", "aria-live": "polite" }, [label, stop, notice]);
  stop.addEventListener("click", () => model.send({ event: "stop" }));
  // a message floating over the widget hides on a click until another message comes
  let dismissed = null;
  error.addEventListener("click", () => { if (error.classList.contains("cnnviz-over")) { dismissed = model.get("error"); render(); } });
  const render = () => {
    const e = model.get("error");
    error.textContent = e;
    error.style.display = e && e !== dismissed ? "block" : "none";
    // once the widget shows something, a message floats over it (under its controls) instead of pushing it down
    const over = !!e && root.dataset.ready === "1";
    error.classList.toggle("cnnviz-over", over);
    error.title = over ? "click to hide this message" : "";
    const controls = root.querySelector(".cnnviz-row");
    error.style.top = over && controls ? `${controls.offsetTop + controls.offsetHeight + 2}px` : "";
    root.dataset.error = e ? "1" : "";
    label.textContent = model.get("busy") ? `working… ${Math.round(100 * model.get("progress"))}% ` : "";
    notice.textContent = model.get("busy") ? "" : (model.get("notice") || "");
    root.setAttribute("aria-busy", model.get("busy") ? "true" : "false");
  };
  model.on("change:error", () => { dismissed = null; render(); });
  for (const t of ["busy", "progress", "notice"]) model.on(`change:${t}`, render);
  render();
  return { error, busy };
}

// Dim ``nodes`` while what they show does not answer the current input (a newer request is on its way):
// a result that arrives for an input the user has left is never presented as current.
function staleMark(root, nodes, isStale) {
  const s = !!isStale();
  nodes.forEach((n) => n.classList.toggle("cnnviz-stale", s));
  root.dataset.stale = s ? "1" : "";
  return s;
}

// the top-5 as bars; with ``onPick(classIndex, label)`` each one is a button (reconstruct that class)
function predictionList(items, onPick) {
  return (items || []).map(([label, p, index]) => {
    // a bar on a full-length track: a 0.1% class still reads as a bar, nearly empty
    const parts = [h("span", { class: "cnnviz-track" }, [h("span", { class: "cnnviz-bar", style: `width:${(100 * p).toFixed(2)}%` })]),
                   h("span", { text: `${label} ${(100 * p).toFixed(1)}%` })];
    if (!onPick || index === undefined || index < 0) return h("li", {}, parts);
    const b = h("button", { class: "cnnviz-pred", title: `reconstruct the class ${label}`, "data-class": String(index) }, parts);
    b.addEventListener("click", () => onPick(index, label));
    return h("li", {}, [b]);
  });
}

// the reverse-rule selector, bound to the synced ``rule`` trait (options and titles from ``rule_options``)
function ruleControl(model) {
  const select = h("select", { "aria-label": "Reverse rule", class: "cnnviz-rule" });
  const render = () => {
    select.replaceChildren(...(model.get("rule_options") || []).map(([name, title]) => h("option", { value: name, text: name, title })));
    select.value = model.get("rule");
    const opt = (model.get("rule_options") || []).find(([name]) => name === model.get("rule"));
    select.title = opt ? opt[1] : "";
  };
  select.addEventListener("change", () => { model.set("rule", select.value); model.save_changes(); });
  model.on("change:rule", render);
  model.on("change:rule_options", render);
  render();
  return h("label", { text: "rule " }, [select]);
}
