// @ts-check
// TrainingTimeline: a step slider (and play) over a network's checkpoints. At the step: the input, the first
// layer's filters, the top-5, each layer's fraction of zeros, every layer's reconstruction in a strip, and the
// recorded metrics with the step marked; or two steps side by side in CompareModels' layout.
import { h, blobImage, cnnvizRoot, statusParts, staleMark, predictionList, ruleControl, kernelWatch, textScale, imagePicker } from "./_shared.js";

/**
 * @typedef {import("./_shared.js").StatusTraits & import("./_shared.js").RuleTraits & {
 *   steps: number[], step_index: number, metrics: Record<string, (number | null)[]>, image_names: string[],
 *   image_index: number, layer_names: string[], fields: string[], input_png: DataView, recs: DataView[],
 *   drawn: string[], captions: string[], predictions: import("./_shared.js").Prediction[], filters_png: DataView,
 *   filters_layer: string, sparsity: [string, number][], shown_step: number, shown_image: number, shown_rule: string,
 *   view: string, compare_steps: number[], columns: string[], compare_rows: DataView[][],
 *   compare_predictions: import("./_shared.js").Prediction[][], compare_drawn: string[][], compare_shown: number[],
 *   compare_input_png: DataView
 * }} Traits  the synced traits of widgets/timeline.py
 */

const SVG = "http://www.w3.org/2000/svg";
const PLAY_MS = 600;  // the least time each step stays on screen while playing

/** @param {string} tag  @param {Record<string, string | number>} attrs  @returns {SVGElement} */
function svg(tag, attrs = {}) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** @param {number} v */
function short(v) { return Math.abs(v) >= 100 || v === Math.round(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(3); }

// one metric over the steps as a small line chart, the current step marked by a vertical line and its value
/** @param {string} name  @param {(number | null)[]} values  @param {number[]} steps  @param {number} at */
function metricChart(name, values, steps, at) {
  const W = 250, H = 126, L = 40, R = 10, T = 26, B = 22;
  const chart = /** @type {SVGSVGElement} */ (/** @type {unknown} */ (svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`,
    class: "cnnviz-metric", role: "img" })));
  const pts = steps.map((s, i) => [s, values[i]]).filter((p) => p[1] !== null && p[1] !== undefined && Number.isFinite(p[1]));
  const xs = steps.length ? [steps[0], steps[steps.length - 1]] : [0, 1];
  const ys = pts.map((p) => /** @type {number} */ (p[1]));
  let lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1;
  if (hi === lo) { lo -= 0.5; hi += 0.5; }
  const x = (/** @type {number} */ s) => L + (xs[1] === xs[0] ? 0.5 : (s - xs[0]) / (xs[1] - xs[0])) * (W - L - R);
  const y = (/** @type {number} */ v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  // one line over the chart: the metric's name, then its value at the marked step (never over the plot or each other)
  const title = svg("text", { x: 2, y: 13 });
  const nameSpan = svg("tspan", { class: "cnnviz-metric-name" });
  nameSpan.textContent = name;
  const valueSpan = svg("tspan", { class: "cnnviz-metric-value", dx: 8 });
  title.append(nameSpan, valueSpan);
  chart.append(title);
  for (const v of [lo, hi]) {
    const t = svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "cnnviz-metric-tick" });
    t.textContent = short(v);
    chart.append(t);
  }
  for (const [s, anchor] of [[xs[0], "start"], [xs[1], "end"]]) {
    const t = svg("text", { x: x(/** @type {number} */ (s)), y: H - 6, "text-anchor": String(anchor), class: "cnnviz-metric-tick" });
    t.textContent = `step ${s}`;
    chart.append(t);
  }
  chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "cnnviz-metric-frame" }));
  chart.append(svg("polyline", { points: pts.map(([s, v]) => `${x(/** @type {number} */ (s))},${y(/** @type {number} */ (v))}`).join(" "),
                                 class: "cnnviz-metric-line" }));
  for (const [s, v] of pts) chart.append(svg("circle", { cx: x(/** @type {number} */ (s)), cy: y(/** @type {number} */ (v)), r: 2.2, class: "cnnviz-metric-dot" }));
  const step = steps[at];
  if (step !== undefined) {
    chart.append(svg("line", { x1: x(step), x2: x(step), y1: T, y2: H - B, class: "cnnviz-metric-mark" }));
    const v = values[at];
    valueSpan.textContent = v === null || v === undefined ? `(none at step ${step})` : `${short(v)} at step ${step}`;
    chart.dataset.marked = String(step);
  }
  chart.setAttribute("aria-label", `${name} over the training; step ${step} marked`);
  return chart;
}

export default {
  /** @type {import("@anywidget/types").Render<Traits>} */
  render({ model, el }) {
    const root = cnnvizRoot(el, "Training timeline");
    const { error, busy } = statusParts(model, root);
    textScale(model, root);
    const { select: picker, control: pickerControl } = imagePicker(model, () => markStale());
    const slider = h("input", { type: "range", min: "0", step: "1", "aria-label": "Step", class: "cnnviz-step-slider" });
    const stepLabel = h("strong", { "aria-live": "polite", class: "cnnviz-step-label" });
    const play = h("button", { class: "cnnviz-play", title: "Play the training, step by step", "aria-label": "Play" });
    const viewBox = h("input", { type: "checkbox", "aria-label": "Compare two steps" });
    const rule = ruleControl(model);
    const display = h("div", { class: "cnnviz-note" });
    const inputImg = blobImage({ alt: "input image" });
    const filtersImg = blobImage({ alt: "first-layer filters", class: "cnnviz-filters" });
    const filtersCaption = h("span");
    const preds = h("ol", { class: "cnnviz-preds", "aria-label": "Top-5 predictions" });
    const charts = h("div", { class: "cnnviz-metrics" });
    const zeros = h("div", { class: "cnnviz-zeros", "aria-label": "Fraction of zero activations per layer" });
    const strip = h("div", { class: "cnnviz-strip", "aria-label": "Every layer at this step" });
    const main = h("div", { class: "cnnviz-main" }, [
      h("div", { class: "cnnviz-figure" }, [inputImg, h("span", { text: "input" })]),
      h("div", { class: "cnnviz-figure" }, [filtersImg, filtersCaption]),
      h("div", { class: "cnnviz-predbox" }, [h("strong", { text: "top-5 predictions" }), preds]),
      h("div", { class: "cnnviz-predbox" }, [h("strong", { text: "zeros per layer (this picture)" }), zeros]),
    ]);
    const stepView = h("div", { class: "cnnviz-step-view" }, [main, strip]);
    const pickA = h("select", { "aria-label": "First step to compare" });
    const pickB = h("select", { "aria-label": "Second step to compare" });
    const table = h("div");
    const compareView = h("div", { class: "cnnviz-compare-view" }, [
      h("div", { class: "cnnviz-row" }, [h("label", { text: "compare step " }, [pickA]), h("label", { text: " with step " }, [pickB])]), table]);
    root.append(error,
      h("div", { class: "cnnviz-row" }, [pickerControl, h("label", { text: "step " }, [slider]),
        stepLabel, play, rule, h("label", { text: "compare two steps " }, [viewBox]), busy]),
      display, charts, stepView, compareView);
    const kernel = kernelWatch(el, root, "This is the saved step's picture; another step, image, rule or comparison "
      + "needs a running kernel.", [picker, slider, play, viewBox, pickA, pickB, /** @type {HTMLSelectElement} */ (rule.querySelector("select"))]);

    /** @type {import("./_shared.js").BlobImage[]} */
    let imgs = [];
    /** @type {import("./_shared.js").BlobImage[]} */
    let compareImgs = [];
    /** @type {ReturnType<typeof setInterval> | null} */
    let timer = null;
    let lastMove = 0;

    const steps = () => model.get("steps") || [];
    function renderControls() {
      const n = steps().length;
      slider.max = String(Math.max(0, n - 1));
      slider.value = String(model.get("step_index"));
      const i = model.get("step_index");
      stepLabel.textContent = n ? `step ${steps()[i]} (${i + 1} of ${n})` : "no checkpoints";
      const options = () => steps().map((s, j) => h("option", { value: String(j), text: `step ${s}` }));
      pickA.replaceChildren(...options());
      pickB.replaceChildren(...options());
      const [a, b] = model.get("compare_steps") || [0, 0];
      pickA.value = String(a);
      pickB.value = String(b);
      const compare = model.get("view") === "compare";
      viewBox.checked = compare;
      stepView.style.display = compare ? "none" : "";
      compareView.style.display = compare ? "" : "none";
      root.dataset.view = model.get("view");
      renderCharts();
    }
    function renderCharts() {
      const metrics = model.get("metrics") || {};
      charts.replaceChildren(...Object.entries(metrics).map(([name, values]) => metricChart(name, values, steps(), model.get("step_index"))));
      root.dataset.marked = String(steps()[model.get("step_index")]);
    }
    function renderStep() {
      imgs.forEach((i) => i.release());
      imgs = [inputImg, filtersImg];
      inputImg.setPNG(model.get("input_png"));
      filtersImg.setPNG(model.get("filters_png"));
      filtersCaption.textContent = `${model.get("filters_layer")}: first-layer filters (grey is 0)`;
      preds.replaceChildren(...predictionList(model.get("predictions")));
      zeros.replaceChildren(...(model.get("sparsity") || []).map(([name, f]) => h("div", { class: "cnnviz-zero", title: `${name}: ${(100 * f).toFixed(1)}% of its activations are 0` }, [
        h("span", { class: "cnnviz-zero-name", text: name }),
        h("span", { class: "cnnviz-track" }, [h("span", { class: "cnnviz-bar", style: `width:${(100 * f).toFixed(1)}%` })]),
        h("span", { text: `${(100 * f).toFixed(0)}%` })])));
      const names = model.get("layer_names") || [];
      const fields = model.get("fields") || [];
      const drawn = model.get("drawn") || [];
      const captions = model.get("captions") || [];
      // alt texts name the photo, the step, the layer and the rule
      const photo = (model.get("image_names") || [])[model.get("shown_image")] ?? `image ${model.get("shown_image")}`;
      const at = `step ${steps()[model.get("shown_step")] ?? "?"}`;
      inputImg.alt = `input: ${photo}, as the network sees it`;
      filtersImg.alt = `the first-layer filters (${model.get("filters_layer")}) at ${at}`;
      strip.replaceChildren(...(model.get("recs") || []).map((png, j) => {
        const img = blobImage({ alt: `${drawn[j] || model.get("shown_rule") || model.get("rule")} reconstruction of ${photo} at layer ${names[j]}, ${at}` });
        img.setPNG(png);
        imgs.push(img);
        const title = [names[j], fields[j], drawn[j] ? `drawn by ${drawn[j]}` : "", captions[j]].filter(Boolean).join("; ");
        return h("div", { class: "cnnviz-thumb", title }, [img, h("span", { text: names[j] })]);
      }));
      display.textContent = model.get("display");
      root.dataset.shownStep = String(model.get("shown_step"));
      if ((model.get("recs") || []).length) root.dataset.ready = "1";
      markStale();
    }
    function renderCompare() {
      compareImgs.forEach((i) => i.release());
      compareImgs = [];
      table.replaceChildren();
      const photo = (model.get("image_names") || [])[model.get("image_index")] ?? `image ${model.get("image_index")}`;
      const input = blobImage({ alt: `input: ${photo}, as the network sees it` });
      input.setPNG(model.get("compare_input_png"));
      compareImgs.push(input);
      const shown = model.get("compare_shown") || [];
      const cols = model.get("columns") || [];
      (model.get("compare_rows") || []).forEach((row, m) => {
        const name = `step ${steps()[shown[m]]}`;
        const cells = [h("div", { class: "cnnviz-figure" }, m === 0 ? [input, h("span", { text: "input" })] : [h("div", { style: "width:114px" })])];
        row.forEach((png, j) => {
          const drawn = ((model.get("compare_drawn") || [])[m] || [])[j] || "";
          const img = blobImage({ alt: `${name}, layer ${cols[j]}: ${drawn || model.get("rule")} reconstruction of ${photo}` });
          img.setPNG(png);
          compareImgs.push(img);
          cells.push(h("div", { class: "cnnviz-figure", title: drawn ? `drawn by ${drawn}` : "" },
                       [img, h("span", { text: cols[j] }), ...(drawn ? [h("span", { class: "cnnviz-note", text: drawn })] : [])]));
        });
        cells.push(h("div", { class: "cnnviz-compare-preds" }, [h("span", { class: "cnnviz-note", text: "top-5" }),
          h("ol", { class: "cnnviz-preds" }, predictionList((model.get("compare_predictions") || [])[m]))]));
        table.appendChild(h("strong", { class: "cnnviz-compare-name", text: name }));
        table.appendChild(h("div", { class: "cnnviz-compare-row" }, cells));
      });
      root.dataset.compared = shown.slice(0, 2).map((i) => String(steps()[i])).join(",");
      markStale();
    }
    const markStale = () => {
      staleMark(root, [stepView], () => model.get("shown_step") !== model.get("step_index")
        || model.get("shown_image") !== model.get("image_index") || model.get("shown_rule") !== model.get("rule"));
      const [a, b] = model.get("compare_steps") || [];
      const [sa, sb, si] = model.get("compare_shown") || [];
      table.classList.toggle("cnnviz-stale", a !== sa || b !== sb || si !== model.get("image_index"));
    };

    /** @param {number} i */
    function goTo(i) {
      model.set("step_index", i);
      model.save_changes();
      lastMove = Date.now();
      renderControls();
      markStale();
    }
    function stopPlaying() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      play.textContent = "▶ play";
      play.setAttribute("aria-label", "Play");
      root.dataset.playing = "";
    }
    function tick() {
      // the next step once the one asked for is on screen (and has been for PLAY_MS): never ahead of the pictures
      const i = model.get("step_index");
      if (model.get("busy") || model.get("shown_step") !== i || Date.now() - lastMove < PLAY_MS) return;
      if (i >= steps().length - 1) { stopPlaying(); return; }
      goTo(i + 1);
    }
    play.addEventListener("click", () => {
      if (timer !== null) { stopPlaying(); return; }
      if (model.get("step_index") >= steps().length - 1) goTo(0);
      else lastMove = 0;
      timer = setInterval(tick, 100);
      play.textContent = "⏸ pause";
      play.setAttribute("aria-label", "Pause");
      root.dataset.playing = "1";
    });
    slider.addEventListener("input", () => { stopPlaying(); goTo(Number(slider.value)); });
    viewBox.addEventListener("change", () => { model.set("view", viewBox.checked ? "compare" : "step"); model.save_changes(); renderControls(); });
    for (const pick of [pickA, pickB]) {
      pick.addEventListener("change", () => {
        model.set("compare_steps", [Number(pickA.value), Number(pickB.value)]);
        model.save_changes();
        markStale();
      });
    }
    // a step's traits arrive together and each fires its change event: the pictures are made once, after the last
    // (making them once per trait would revoke object URLs the browser is still loading)
    /** @param {() => void} render */
    const once = (render) => {
      let pending = false;
      return () => { if (!pending) { pending = true; queueMicrotask(() => { pending = false; render(); }); } };
    };
    const stepSoon = once(renderStep), compareSoon = once(renderCompare);
    for (const t of ["input_png", "recs", "filters_png", "predictions", "sparsity", "display", "shown_step"]) model.on(`change:${t}`, stepSoon);
    for (const t of ["compare_rows", "compare_predictions", "compare_shown", "compare_input_png"]) model.on(`change:${t}`, compareSoon);
    for (const t of ["steps", "step_index", "image_names", "image_index", "metrics", "view", "compare_steps"]) model.on(`change:${t}`, renderControls);
    for (const t of ["shown_image", "shown_rule", "rule"]) model.on(`change:${t}`, markStale);
    play.textContent = "▶ play";
    renderControls(); renderStep(); renderCompare();
    return () => { stopPlaying(); imgs.forEach((i) => i.release()); compareImgs.forEach((i) => i.release()); kernel.dispose(); };
  },
};
