// @ts-check
// DeconvExplorer: input image, a strip of per-layer reconstructions, a layer slider, a rule selector.
// All reconstructions arrive once as picture buffers: moving the slider only
// swaps object URLs that already exist, with no kernel round-trip.
import { h, EMPTY_IMAGE, pngURL, cnnvizRoot, statusParts, staleMark, predictionList, ruleControl, kernelWatch, pictureInput, webcam,
  textScale, uniqueId, imagePicker } from "./_shared.js";

/**
 * @typedef {import("./_shared.js").StatusTraits & import("./_shared.js").RuleTraits & {
 *   layer_names: string[], layer: string, image_names: string[], image_index: number, input_png: DataView,
 *   recs: DataView[], rf: number[][], switches: boolean[], captions: string[], drawn: string[], grid: number[][], channels: number[],
 *   input_size: number, selected: import("./_shared.js").UnitSelection, unit_png: DataView,
 *   predictions: import("./_shared.js").Prediction[], shown_image: number, shown_rule: string,
 *   class_map_png: DataView, class_map_for: { index?: number, label?: string, layer?: string, method?: string, error?: string },
 *   map_opacity: number, map_layer: string, show_map: boolean,
 *   live_input_png: DataView, live_rec_png: DataView, live_frame: { n?: number, t?: number, layer?: string, dropped?: number }
 * }} Traits  the synced traits of widgets/deconv_explorer.py and its parts (strip.py, unit_view.py, class_map_view.py, live.py)
 */

export default {
  /** @type {import("@anywidget/types").Render<Traits>} */
  render({ model, el }) {
    const root = cnnvizRoot(el, "Deconvnet explorer");
    const { error, busy } = statusParts(model, root);
    textScale(model, root);
    const { select: picker, control: pickerControl } = imagePicker(model, () => markStale());
    const slider = h("input", { type: "range", min: "0", step: "1", "aria-label": "Layer" });
    const layerLabel = h("strong", { class: "cnnviz-layer-name" });  // the slider's aria-valuetext names the layer: not announced twice
    const inputImg = h("img", { alt: "input image", class: "cnnviz-input" });
    const fieldMark = h("div", { class: "cnnviz-mark cnnviz-field", title: "the clicked unit's receptive field: the input it sees" });
    const inputCaption = h("span", { text: "input" });
    // the class evidence map (Grad-CAM) of the top-1 or the class picked in the top-5, over the input
    const mapImg = h("img", { class: "cnnviz-classmap", alt: "class evidence map over the input" });
    const opacity = h("input", { type: "range", min: "0", max: "1", step: "0.05", "aria-label": "Class map opacity", style: "width:6em" });
    const atLayer = h("input", { type: "checkbox", "aria-label": "Draw the class map at the layer on screen" });
    const mapCaption = h("div", { class: "cnnviz-note" });
    const showMap = h("input", { type: "checkbox", "aria-label": "Show where the class is found (Grad-CAM)" });
    const mapControls = h("div", { class: "cnnviz-mapbar" }, [h("label", { text: " opacity " }, [opacity]),
      h("label", { text: " at this layer" }, [atLayer])]);
    const mapBar = h("div", { class: "cnnviz-mapbar", title: "Grad-CAM: where the network finds the class (a top-5 click picks the class)" },
      [h("label", { text: "class map" }, [showMap]), mapControls]);
    const bigImg = h("img", { class: "cnnviz-big", alt: "reconstruction of the selected layer" });
    // the keyboard's way to a unit: the big picture's frame takes focus, the arrow keys move a cursor over the
    // layer's map (one unit a press), Enter or Space reconstructs the strongest filter there (as a click does)
    const cursor = h("div", { class: "cnnviz-cursor", "aria-hidden": "true" });
    const cursorSaid = h("div", { class: "cnnviz-sr", "aria-live": "polite" });
    const unitPick = h("div", { class: "cnnviz-frame cnnviz-unitpick", tabindex: "0", role: "application",
      "aria-roledescription": "unit picker" }, [bigImg, cursor, cursorSaid]);
    const unitImg = h("img", { alt: "reconstruction of the clicked unit" });
    const bigCaption = h("span");
    const unitCaption = h("span", { text: "click the reconstruction to see one unit" });
    const filterBox = h("input", { type: "number", min: "0", step: "1", placeholder: "filter #", "aria-label": "Reconstruct one filter of this layer", style: "width:7em" });
    const preds = h("ol", { class: "cnnviz-preds", "aria-label": "Top-5 predictions" });
    const predsHint = h("div", { class: "cnnviz-note" });
    const predsBox = h("div", { class: "cnnviz-predbox" }, [h("strong", { text: "top-5 predictions" }), predsHint, preds]);
    // the strip is one tab stop: the arrow keys move through its options (aria-activedescendant names the one on screen)
    const strip = h("div", { class: "cnnviz-strip", role: "listbox", "aria-label": "All layers", tabindex: "0" });
    const note = h("div", { class: "cnnviz-note" });  // not live: it would be re-read at every layer step
    const rule = ruleControl(model);
    const upload = pictureInput(model, root);
    const camera = webcam(model, root, { live: true, side: () => model.get("input_size") || 224 });
    root.append(
      error,
      h("div", { class: "cnnviz-row" }, [pickerControl, upload.controls, camera.controls,
        h("label", { text: "layer " }, [slider]), layerLabel, rule, h("label", { text: "one filter " }, [filterBox]), busy]),
      note,
      h("div", { class: "cnnviz-main" }, [
        h("div", { class: "cnnviz-figure" }, [h("div", { class: "cnnviz-frame" }, [inputImg, mapImg, fieldMark]), inputCaption,
          mapBar, mapCaption]),
        h("div", { class: "cnnviz-figure" }, [unitPick, bigCaption]),
        h("div", { class: "cnnviz-figure" }, [unitImg, unitCaption]),
        predsBox,
      ]),
      strip,
    );
    // a saved page (no kernel): every layer's picture of the saved image is here, so the slider, the arrow keys
    // and the strip work; anything new is computed by the kernel
    const kernel = kernelWatch(el, root, "The layer slider, the arrow keys and the strip show every "
      + "layer of this saved image; choosing another image, rule, filter, unit or class needs a running kernel.",
      [picker, filterBox, atLayer, showMap, upload.button, camera.button, /** @type {HTMLSelectElement} */ (rule.querySelector("select"))], () => { renderPreds(); renderUnit(); });

    /** @type {string | null} */
    let askedByEnter = null;
    /** @type {string[]} */
    let urls = [];
    let decoded = Promise.resolve();
    let renders = 0;  // which renderImages the pictures decoding now belong to
    let inputURL = "";
    let unitURL = "";
    /** @type {HTMLDivElement[]} */
    let thumbs = [];
    const stripId = uniqueId("layer");

    const names = () => model.get("layer_names") || [];
    // module paths ("layer3.0.conv1") keep their informative end under a thumbnail; the full name is its title
    // (broken after a dot or an inner underscore; a long path keeps its first part and its last whole parts)
    const breakable = (/** @type {string} */ s) => s.replace(/\./g, ".\u200b").replace(/([A-Za-z0-9])_(?=[A-Za-z0-9])/g, "$1_\u200b");  // after a dot or an inner underscore
    /** @param {string} name  @returns {string} */
    function shortName(name) {
      const parts = name.split(".");
      if (name.length <= 16 || parts.length < 3) return breakable(name);
      let tail = parts.pop() || "";  // three parts at least
      while (parts.length > 1 && tail.length + parts[parts.length - 1].length + 1 <= 18) tail = `${parts.pop()}.${tail}`;
      const head = parts[0].slice(0, 8);
      if (head.length + 1 + tail.length >= name.length) return breakable(name);
      return `${head.length + 1 + tail.length <= 22 ? head : ""}…\u200b${breakable(tail)}`;
    }
    const layerWord = (/** @type {string} */ name) => (/^layer/i.test(name) ? name : `layer ${name}`);
    const photo = (/** @type {number} */ i) => (model.get("image_names") || [])[i] ?? `image ${i}`;  // what the picker calls it
    // the filter box says which filters the layer has, and forgets a number asked of another layer or photo
    function renderFilterRange() {
      const c = (model.get("channels") || [])[Number(slider.value)];
      filterBox.placeholder = c ? `0-${c - 1}` : "filter #";
      if (c) filterBox.max = String(c - 1); else filterBox.removeAttribute("max");
      filterBox.title = c ? `one of this layer's ${c} filters (or classes), then Enter` : "";
    }
    const forgetFilter = () => { filterBox.value = ""; askedByEnter = null; };
    const mainRow = /** @type {HTMLDivElement} */ (root.querySelector(".cnnviz-main"));
    // pictures belong to shown_image; while the picker is on another image they are dimmed, not passed off as its
    const stale = () => model.get("shown_image") !== model.get("image_index") || model.get("shown_rule") !== model.get("rule");
    const markStale = () => {
      const s = staleMark(root, [mainRow, strip], stale);
      root.dataset.rule = model.get("shown_rule") || "";
      const i = Number(slider.value);
      const caption = (model.get("captions") || [])[i];
      const drawn = (model.get("drawn") || [])[i];  // the rule that drew this picture: "guided (auto)"
      const layer = `${layerWord(names()[i] || "")}${caption ? `: ${caption}` : ""}`;
      const by = drawn ? ` · ${drawn}` : "";
      const newRule = model.get("shown_rule") !== model.get("rule") ? `the ${model.get("rule")} rule for ` : "";
      const arriving = urls.length > 0 && !urls[i];  // the layer on screen came first; this one is on its way
      renderAlts();
      if (!root.dataset.live) bigCaption.textContent = !s ? (arriving ? `${layer}: arriving…${by}` : `${layer}${by}`)
        : model.get("busy") || !model.get("error") ? `computing ${newRule}${photo(model.get("image_index"))}…`
        : `${layer}, still of ${photo(model.get("shown_image"))}${newRule ? ` by the ${model.get("shown_rule")} rule` : ""}`;
      renderNote();
    };
    // alt texts name the photo, the layer and the rule (a screen reader hears what is shown, not "the selected layer")
    function renderAlts() {
      const i = Number(slider.value), name = names()[i] || "";
      const shown = photo(model.get("shown_image"));
      const by = ((model.get("drawn") || [])[i] || model.get("shown_rule") || model.get("rule") || "").replace(/ \(auto\)$/, " (auto rule)");
      inputImg.alt = `input: ${shown}, as the network sees it`;
      bigImg.alt = `${by} reconstruction of ${shown} at ${layerWord(name)}`;
      const g = (model.get("grid") || [])[i] || [];
      unitPick.setAttribute("aria-label", `${layerWord(name)}, ${g.length ? `a ${g[0]}×${g[1]} map: ` : ""}arrow keys move a cursor over its units, `
        + `Enter reconstructs the strongest filter there`);
      const sel = model.get("selected") || {};
      unitImg.alt = sel.layer ? `${model.get("rule")} reconstruction of ${unitCaption.textContent} in ${shown}` : "no unit chosen yet";
    }
    // one line under the controls: the display used, and why a deconvnet without switches looks alike for every image
    function renderNote() {
      const i = Number(slider.value);
      const drawnBy = ((model.get("drawn") || [])[i] || model.get("shown_rule") || "").split(" ")[0];
      const noSwitch = drawnBy === "deconvnet" && (model.get("switches") || [])[i] === false;
      const parts = [model.get("note") || "", model.get("display") || ""];  // note: e.g. random weights, from the probe
      if (noSwitch) parts.push(`No max-pool lies below ${names()[i]}: the deconvnet takes nothing from the picture but this layer's activations (it has no switches), so deep layers look alike for every image; the guided rule follows the image.`);
      note.textContent = parts.filter(Boolean).join(" · ");
      root.dataset.noSwitches = noSwitch ? "1" : "";
    }
    // the strip scrolls itself (never the page) so that the current layer's thumbnail is whole
    /** @param {HTMLElement | undefined} t */
    function keepInView(t) {
      if (!t || !strip.clientWidth) return;
      const left = t.offsetLeft - strip.offsetLeft, right = left + t.offsetWidth;
      if (left < strip.scrollLeft) strip.scrollLeft = left;
      else if (right > strip.scrollLeft + strip.clientWidth) strip.scrollLeft = right - strip.clientWidth;
    }
    /** @param {number} i  @param {boolean} sync  whether the model follows (not when the model moved it) */
    function showLayer(i, sync) {
      const n = names();
      if (!n.length) return;
      i = Math.max(0, Math.min(n.length - 1, i));
      slider.value = String(i);
      renderFilterRange();
      layerLabel.textContent = n[i];
      markStale();
      // a layer whose picture is still on its way (the one on screen comes first) is an empty tile meanwhile
      if (!root.dataset.live && (urls[i] || urls.length)) { bigImg.src = urls[i] || EMPTY_IMAGE; bigImg.classList.toggle("cnnviz-empty", !urls[i]); }
      thumbs.forEach((t, j) => { t.classList.toggle("active", j === i); t.setAttribute("aria-selected", String(j === i)); });
      if (thumbs[i]) strip.setAttribute("aria-activedescendant", thumbs[i].id);
      slider.setAttribute("aria-valuetext", layerWord(n[i]));
      placeCursor();
      keepInView(thumbs[i]);
      root.dataset.shownLayer = n[i];
      if (sync && model.get("layer") !== n[i]) { model.set("layer", n[i]); model.save_changes(); }
      if (sync && atLayer.checked) mapAt();  // the map follows the layer on screen
    }
    function renderImages() {
      const old = urls;  // revoked once their own pre-decoding has settled (no fetch of a revoked URL)
      decoded.then(() => old.forEach((u) => URL.revokeObjectURL(u)));
      urls = (model.get("recs") || []).map(pngURL);
      // decode every layer's picture now, so a slider move only swaps an already-decoded image
      const render = ++renders;
      const whole = urls.length > 0 && urls.every(Boolean);  // not a first part (the layer on screen alone)
      root.dataset.decoded = "";
      decoded = Promise.all(urls.filter(Boolean).map((u) => { const im = new Image(); im.src = u; return im.decode().catch(() => null); }))
        .then(() => { if (whole && render === renders) root.dataset.decoded = "1"; });
      strip.replaceChildren();
      thumbs = names().map((name, i) => {
        const img = h("img", { src: urls[i] || EMPTY_IMAGE, alt: "", class: urls[i] ? "" : "cnnviz-empty" });
        const t = h("div", { class: "cnnviz-thumb", role: "option", title: name, id: `${stripId}-${i}`, "aria-label": layerWord(name) },
                    [img, h("span", { text: shortName(name), "aria-hidden": "true" })]);
        t.addEventListener("click", () => showLayer(i, true));
        strip.appendChild(t);
        return t;
      });
      slider.max = String(Math.max(0, names().length - 1));
      showLayer(Math.max(0, names().indexOf(model.get("layer"))), false);
      root.dataset.arrived = String(urls.filter(Boolean).length);  // pictures of the strip here so far
      const ready = () => { root.dataset.ready = "1"; };
      if (bigImg.complete && bigImg.naturalWidth > 0) ready(); else bigImg.onload = ready;
    }
    function renderInput() {
      if (root.dataset.live) return;  // the camera's frame stands in for the photo until live mode ends
      if (inputURL) URL.revokeObjectURL(inputURL);
      inputURL = pngURL(model.get("input_png"));
      inputImg.src = inputURL || EMPTY_IMAGE;
    }
    function renderUnit() {
      if (unitURL) URL.revokeObjectURL(unitURL);
      unitURL = pngURL(model.get("unit_png"));
      unitImg.src = unitURL || EMPTY_IMAGE;
      unitImg.classList.toggle("cnnviz-empty", !unitURL);
      const s = model.get("selected") || {};
      unitCaption.textContent = s.unit ? `${s.layer} filter ${s.unit[0]}${s.activation !== undefined ? " (the strongest there)" : ""}, `
          + `map row ${s.unit[1]}, column ${s.unit[2]}`
        : s.label !== undefined ? `${s.layer}: class ${s.label}`
        : s.channel !== undefined ? `${s.layer} filter ${s.channel}, whole feature map`
        : kernel.live() ? "click the reconstruction to see one unit" : "one unit's reconstruction needs a running kernel";
      markPickedClass();
      placeField(s);
      if (s.unit && s.layer) cur = { layer: s.layer, y: s.unit[1], x: s.unit[2] };
      placeCursor();
      renderAlts();
      root.dataset.unit = s.unit ? s.unit.join(",") : "";
      root.dataset.selectedClass = s.label !== undefined ? String(s.channel) : "";
      root.dataset.channel = s.channel !== undefined && s.label === undefined ? String(s.channel) : "";
    }
    // the clicked unit's receptive field (the kernel's box: top, left, bottom, right in input pixels), boxed on
    // the input where it lies inside; the whole input needs no box
    /** @param {import("./_shared.js").UnitSelection} s */
    function placeField(s) {
      const n = model.get("input_size"), f = s.field;
      fieldMark.style.display = "none";
      root.dataset.field = "";
      if (!s.unit || !f || f.length !== 4) { inputCaption.textContent = "input"; return; }
      const [top, left, bottom, right] = [Math.max(0, f[0]), Math.max(0, f[1]), Math.min(n, f[2]), Math.min(n, f[3])];
      if (top <= 0 && left <= 0 && bottom >= n && right >= n) { inputCaption.textContent = `input: all of it is what ${s.layer} filter ${s.unit[0]} sees`; return; }
      const at = (/** @type {number} */ v) => `calc(1px + (100% - 2px) * ${(v / n).toFixed(5)})`;  // inside the picture's 1 px border
      const span = (/** @type {number} */ v) => `calc((100% - 2px) * ${(v / n).toFixed(5)})`;
      Object.assign(fieldMark.style, { display: "block", left: at(left), top: at(top), width: span(right - left), height: span(bottom - top) });
      root.dataset.field = [top, left, bottom, right, n].join(",");  // in input pixels, of n
      const h = f[2] - f[0], w = f[3] - f[1];
      inputCaption.textContent = `input · boxed: what the unit sees, ${h === w ? h : `${h}×${w}`}\u00a0px`;
    }
    let mapURL = "";
    function renderMap() {
      if (mapURL) URL.revokeObjectURL(mapURL);
      mapURL = pngURL(model.get("class_map_png"));
      mapImg.src = mapURL || EMPTY_IMAGE;
      mapImg.style.display = mapURL && !root.dataset.live ? "" : "none";
      const f = model.get("class_map_for") || {};
      mapCaption.textContent = f.error ? `no class map: ${f.error}`
        : f.label !== undefined ? `where ${f.label} is found (${f.method} at ${f.layer})` : "";
      mapControls.style.display = f.label !== undefined ? "" : "none";
      atLayer.checked = !!model.get("map_layer");
      showMap.checked = !!model.get("show_map");
      mapBar.style.display = (model.get("predictions") || []).length ? "" : "none";
      root.dataset.classMap = f.label !== undefined && !f.error ? `${f.label}@${f.layer}` : "";
      renderOpacity();
    }
    function renderOpacity() {
      const o = model.get("map_opacity");
      opacity.value = String(o);
      mapImg.style.opacity = String(o);
      opacity.title = `${Math.round(100 * o)}% map over the input`;
    }
    opacity.addEventListener("input", () => { model.set("map_opacity", Number(opacity.value)); model.save_changes(); renderOpacity(); });
    const mapAt = () => { const want = atLayer.checked ? names()[Number(slider.value)] || "" : "";
      if (model.get("map_layer") !== want) { model.set("map_layer", want); model.save_changes(); } };
    atLayer.addEventListener("change", mapAt);
    showMap.addEventListener("change", () => { model.set("show_map", showMap.checked); model.save_changes(); });
    // live mode: the camera's frame and the layer on screen for it stand in for the photo and its layer
    let liveURLs = ["", ""];
    let liveShown = 0, liveSince = 0;
    function renderLive() {
      liveURLs.forEach((u) => u && URL.revokeObjectURL(u));
      const f = model.get("live_frame") || {};
      if (!model.get("live_input_png") || !model.get("live_input_png").byteLength) {
        liveURLs = ["", ""];
        delete root.dataset.live;
        liveShown = 0;
        renderInput(); showLayer(Number(slider.value), false); renderMap();
        return;
      }
      liveURLs = [pngURL(model.get("live_input_png")), pngURL(model.get("live_rec_png"))];
      inputImg.src = liveURLs[0];
      bigImg.src = liveURLs[1];
      mapImg.style.display = "none";  // the class map belongs to the photo in the list, not to the camera's frame
      liveShown += 1;
      if (liveShown === 1) liveSince = performance.now();
      const lag = f.t !== undefined ? performance.now() - f.t : NaN;  // capture to picture, this page's clock
      root.dataset.live = String(liveShown);
      root.dataset.liveLag = Number.isFinite(lag) ? lag.toFixed(0) : "";
      const rate = liveShown > 1 ? (liveShown - 1) / ((performance.now() - liveSince) / 1000) : 0;
      bigCaption.textContent = `live · ${layerWord(f.layer || "")} · ${rate ? `${rate.toFixed(1)} frames/s · ` : ""}`
        + `${Number.isFinite(lag) ? `${Math.round(lag)} ms behind the camera` : ""}`;
    }
    function renderPreds() {
      const items = model.get("predictions") || [];
      predsHint.textContent = kernel.live() ? "click one to reconstruct that class" : "";
      preds.replaceChildren(...predictionList(items, kernel.live() ? (index) => model.send({ event: "class", index }) : undefined));
      predsBox.style.display = items.length ? "" : "none";
      markPickedClass();  // a class picked before the top-5 arrived (a cell, the filter box) is marked in it
    }
    // the top-5 bar of the class in the unit view, marked
    function markPickedClass() {
      const s = model.get("selected") || {};
      preds.querySelectorAll("button").forEach((b) => b.classList.toggle("active", s.label !== undefined && b.dataset.class === String(s.channel)));
    }

    /** @type {{ layer: string, y: number, x: number }} */
    let cur = { layer: "", y: 0, x: 0 };
    // the cursor on the layer on screen: where it was on this layer, else on the chosen unit, else the map's centre
    function cursorHere() {
      const i = Number(slider.value), name = names()[i] || "", g = (model.get("grid") || [])[i] || [1, 1];
      if (cur.layer !== name) cur = { layer: name, y: Math.floor(g[0] / 2), x: Math.floor(g[1] / 2) };
      cur.y = Math.max(0, Math.min(g[0] - 1, cur.y)); cur.x = Math.max(0, Math.min(g[1] - 1, cur.x));
      return g;
    }
    function placeCursor() {
      const g = cursorHere();
      Object.assign(cursor.style, { left: `${(100 * cur.x / g[1]).toFixed(3)}%`, top: `${(100 * cur.y / g[0]).toFixed(3)}%`,
                                    width: `${(100 / g[1]).toFixed(3)}%`, height: `${(100 / g[0]).toFixed(3)}%` });
      root.dataset.cursor = `${cur.y},${cur.x}`;
    }
    unitPick.addEventListener("keydown", (ev) => {
      const move = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
      if (move) {
        cursorHere();
        cur.y += move[0]; cur.x += move[1];
        placeCursor();
        cursorSaid.textContent = `row ${cur.y}, column ${cur.x}`;
      } else if (ev.key === "Enter" || ev.key === " ") {
        if (!kernel.live()) { cursorSaid.textContent = "one unit's reconstruction needs a running kernel"; }
        else { cursorHere(); model.send({ event: "cell", layer: cur.layer, y: cur.y, x: cur.x }); }
      } else return;
      ev.preventDefault(); ev.stopPropagation();  // the root's arrow keys turn the layer: not here
    });
    unitPick.addEventListener("focus", placeCursor);
    strip.addEventListener("keydown", (ev) => {
      if (ev.key === "Home") showLayer(0, true); else if (ev.key === "End") showLayer(names().length - 1, true); else return;
      ev.preventDefault(); ev.stopPropagation();
    });
    slider.addEventListener("input", () => showLayer(Number(slider.value), true));
    // Enter asks at once (JupyterLab 4 sent no "change" on Enter here); leaving the box asks too, unless
    // Enter already asked for that very value
    const askFilter = () => {
      if (filterBox.value === "") return;
      model.send({ event: "channel", layer: names()[Number(slider.value)], channel: Number(filterBox.value) });
    };
    filterBox.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      ev.preventDefault(); ev.stopPropagation();
      askedByEnter = filterBox.value;
      askFilter();
    });
    filterBox.addEventListener("input", () => { askedByEnter = null; });
    filterBox.addEventListener("change", () => {
      if (filterBox.value === askedByEnter) { askedByEnter = null; return; }
      askFilter();
    });
    root.addEventListener("keydown", (ev) => {
      // a select, the filter box and the opacity slider keep their own arrow keys; the layer slider's turn the layer
      if (ev.target instanceof HTMLSelectElement || (ev.target instanceof HTMLInputElement && ev.target !== slider)) return;
      const i = Number(slider.value);
      if (ev.key === "ArrowRight" || ev.key === "ArrowUp") { showLayer(i + 1, true); ev.preventDefault(); ev.stopPropagation(); }
      if (ev.key === "ArrowLeft" || ev.key === "ArrowDown") { showLayer(i - 1, true); ev.preventDefault(); ev.stopPropagation(); }
    });
    bigImg.addEventListener("click", (ev) => {
      if (!kernel.live()) return;
      const r = bigImg.getBoundingClientRect();
      const size = model.get("input_size");
      model.send({ event: "click", layer: names()[Number(slider.value)], x: (ev.clientX - r.left) / r.width * size,
                   y: (ev.clientY - r.top) / r.height * size });
    });

    model.on("change:recs", renderImages);
    model.on("change:input_png", renderInput);
    model.on("change:layer", () => { const i = names().indexOf(model.get("layer")); if (i >= 0 && String(i) !== slider.value) showLayer(i, false); });
    model.on("change:image_index", markStale);
    for (const t of ["shown_image", "shown_rule", "rule", "busy", "error", "captions", "drawn", "display", "grid", "note"]) model.on(`change:${t}`, markStale);
    model.on("change:shown_image", forgetFilter);  // a number typed for the last photo is not this one's
    model.on("change:channels", renderFilterRange);
    model.on("change:unit_png", renderUnit);
    model.on("change:selected", renderUnit);
    model.on("change:predictions", renderPreds);
    for (const t of ["class_map_png", "class_map_for", "map_layer", "show_map", "predictions"]) model.on(`change:${t}`, renderMap);
    model.on("change:map_opacity", renderOpacity);
    model.on("change:live_frame", renderLive);
    renderInput(); renderImages(); renderUnit(); renderPreds(); renderMap(); markStale();
    const stripSized = new ResizeObserver(() => keepInView(thumbs[Number(slider.value)]));  // once it has a width
    stripSized.observe(strip);

    return () => {
      stripSized.disconnect();
      kernel.dispose();
      urls.forEach((u) => URL.revokeObjectURL(u));
      if (inputURL) URL.revokeObjectURL(inputURL);
      if (unitURL) URL.revokeObjectURL(unitURL);
      if (mapURL) URL.revokeObjectURL(mapURL);
      liveURLs.forEach((u) => u && URL.revokeObjectURL(u));
      camera.dispose();
    };
  },
};
