// @ts-check
// Helpers shared by every cnnviz widget: each widget file imports what it uses from here. anywidget loads a
// module from a Blob URL, where a relative import cannot resolve, so Python joins this file and the widget's
// into one module (widgets/assets.py: esm). Text that came from data is only ever set with textContent.

/** @typedef {{ error: string, busy: boolean, progress: number, notice: string, note: string, text_scale: number }} StatusTraits  every widget's (widgets/_base.py); note: e.g. that the weights are random */
/** @typedef {{ rule: string, rule_options: [string, string][], display: string }} RuleTraits  a widget showing reconstructions */
/**
 * @typedef {{ layer?: string, unit?: [number, number, number], activation?: number, field?: number[],
 *   channel?: number | string, label?: string }} UnitSelection  the explorer's unit, filter or class view
 * @typedef {{ layer?: string, filter?: number, page?: number, rule?: string, drawn?: string }} FilterSelection  a FilterGrid's filter (and what its pictures answer)
 * @typedef {{ layer?: string, unit?: number, image?: number, image_name?: string, y?: number, x?: number,
 *   cell?: [number, number] }} PatchSelection  an EmbeddingMap's patch
 */
/** @typedef {HTMLImageElement & { setPNG(view: DataView | null | undefined): void, release(): void }} BlobImage */
/** @typedef {[string, number, number?]} Prediction  label, probability, class index (-1: none) */

// patches are receptive fields, which often cross the photo's edge
export const PATCH_EDGE_NOTE = "flat colour at a patch's edge: outside the photo (the mean colour, what the network sees there)";

/**
 * An element: ``props.text`` its text, ``props.class`` its class, other props its attributes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [props]
 * @param {Node[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.appendChild(c);
  return node;
}

export const EMPTY_IMAGE = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAIBAAA=";  // 1x1 transparent

// the picture's type from its first bytes: the kernel sends PNG, JPEG or BMP (raw pixels, the fastest to make)
/** @param {DataView | ArrayBuffer} view */
export function pictureType(view) {
  const b = view instanceof ArrayBuffer ? new Uint8Array(view, 0, Math.min(2, view.byteLength))
    : new Uint8Array(view.buffer, view.byteOffset, Math.min(2, view.byteLength));
  if (b[0] === 0xff && b[1] === 0xd8) return "image/jpeg";
  if (b[0] === 0x42 && b[1] === 0x4d) return "image/bmp";
  return "image/png";
}

/** @param {DataView | ArrayBuffer | null | undefined} view  @returns {string} an object URL, "" for no picture */
export function pngURL(view) {
  if (!view || view.byteLength === 0) return "";
  return URL.createObjectURL(new Blob([/** @type {BlobPart} */ (view)], { type: pictureType(view) }));
}

// an <img> whose object URL is revoked whenever it is replaced (no leaks on long sessions)
/** @param {Record<string, string>} props  @returns {BlobImage} */
export function blobImage(props) {
  const img = /** @type {BlobImage} */ (h("img", props));
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

/** @param {HTMLElement} el  @param {string} label  @returns {HTMLDivElement} */
export function cnnvizRoot(el, label) {
  const root = h("div", { class: "cnnviz", tabindex: "0", "data-lm-suppress-shortcuts": "true", role: "group", "aria-label": label });
  el.appendChild(root);
  return root;
}

// Text size: the synced ``text_scale`` (1 = the theme's UI size; 1.5 for a projector) scales every text of the
// widget through the CSS variable --cv-scale, which cnnviz.css multiplies into each font size.
/** @param {import("@anywidget/types").AnyModel<any>} model  @param {HTMLElement} root */
export function textScale(model, root) {
  const render = () => {
    const s = Number(model.get("text_scale")) || 1;
    root.style.setProperty("--cv-scale", String(s));
    root.dataset.textScale = String(s);
  };
  model.on("change:text_scale", render);
  render();
}

let uid = 0;
/** an id unique in the page (aria-activedescendant, aria-describedby)  @param {string} what */
export function uniqueId(what) { uid += 1; return `cnnviz-${what}-${uid}`; }

/**
 * The image picker: a labelled select of ``image_names`` bound to ``image_index`` (the explorer's and
 * CompareModels'). ``onPick`` runs after a pick is saved.
 * @param {import("@anywidget/types").AnyModel<any>} model  @param {() => void} [onPick]
 * @returns {{ select: HTMLSelectElement, control: HTMLLabelElement, render: () => void }}
 */
export function imagePicker(model, onPick) {
  const select = h("select", { "aria-label": "Image" });
  const render = () => {
    select.replaceChildren(...(model.get("image_names") || []).map((/** @type {string} */ n, /** @type {number} */ i) => h("option", { value: String(i), text: n })));
    select.value = String(model.get("image_index"));
  };
  select.addEventListener("change", () => { model.set("image_index", Number(select.value)); model.save_changes(); if (onPick) onPick(); });
  model.on("change:image_names", render);
  model.on("change:image_index", render);
  render();
  return { select, control: h("label", { text: "image " }, [select]), render };
}

// the error banner, the busy line with its Stop control, and the notice line every widget shows
/** @param {import("@anywidget/types").AnyModel<StatusTraits>} model  @param {HTMLElement} root */
export function statusParts(model, root) {
  const error = h("div", { class: "cnnviz-error", role: "alert" });
  const label = h("span");
  const stop = h("button", { class: "cnnviz-stop", text: "■ stop", title: "Stop this computation (the previous result stays)",
                             "aria-label": "Stop the computation" });
  const notice = h("span", { class: "cnnviz-notice" });
  // what a screen reader hears: the start of a job and its end (or a calm notice), never each progress tick
  const said = h("span", { class: "cnnviz-sr", role: "status" });
  const busy = h("span", { class: "cnnviz-busy" }, [label, stop, notice, said]);
  let wasBusy = false;
  stop.addEventListener("click", () => model.send({ event: "stop" }));
  // a message floating over the widget hides on a click until another message comes
  /** @type {string | null} */
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
    const controls = /** @type {HTMLElement | null} */ (root.querySelector(".cnnviz-row"));
    error.style.top = over && controls ? `${controls.offsetTop + controls.offsetHeight + 2}px` : "";
    root.dataset.error = e ? "1" : "";
    // while busy, the job's own status (e.g. "measuring the receptive field of …") stands in for "working…"
    label.textContent = model.get("busy") ? `${model.get("notice") || "working…"} ${Math.round(100 * model.get("progress"))}% ` : "";
    notice.textContent = model.get("busy") ? "" : (model.get("notice") || "");
    root.setAttribute("aria-busy", model.get("busy") ? "true" : "false");
    const nowBusy = !!model.get("busy");
    const say = nowBusy && !wasBusy ? `${model.get("notice") || "working"}…` : !nowBusy && wasBusy ? (model.get("notice") || "done")
      : !nowBusy ? (model.get("notice") || "") : said.textContent;
    if (say !== said.textContent) said.textContent = say;
    wasBusy = nowBusy;
  };
  model.on("change:error", () => { dismissed = null; render(); });
  for (const t of ["busy", "progress", "notice"]) model.on(`change:${t}`, render);
  render();
  return { error, busy };
}

// Dim ``nodes`` while what they show does not answer the current input (a newer request is on its way):
// a result that arrives for an input the user has left is never presented as current.
/** @param {HTMLElement} root  @param {HTMLElement[]} nodes  @param {() => boolean} isStale */
export function staleMark(root, nodes, isStale) {
  const s = !!isStale();
  nodes.forEach((n) => n.classList.toggle("cnnviz-stale", s));
  root.dataset.stale = s ? "1" : "";
  return s;
}

// the top-5 as bars; with ``onPick(classIndex, label)`` each one is a button (reconstruct that class)
/** @param {Prediction[] | undefined} items  @param {(index: number, label: string) => void} [onPick]  @returns {HTMLLIElement[]} */
export function predictionList(items, onPick) {
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
/** @param {import("@anywidget/types").AnyModel<RuleTraits>} model */
export function ruleControl(model) {
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

// Whether a kernel is behind the widget. A page made by `jupyter nbconvert --to html` from a notebook saved with
// its widget state (and a notebook reopened after its kernel has gone) renders each widget from that state with no
// comm: ipywidgets' view then carries the class jupyter-widgets-disconnected on its element (DOMWidgetView sets it
// from model.comm_live before render and again whenever that changes), and anywidget renders into that element.
// Hosts that are not ipywidgets (marimo) never set it, and always have a kernel. While there is none, a note at
// the top of ``root`` says so and ``message``, ``controls`` are disabled, and root carries data-offline="1". When
// the kernel comes back they are enabled again and ``onChange`` re-renders, so a widget's own rules (Back only when
// zoomed in) apply again: a widget that disables a control itself also asks ``live()``.
/**
 * @param {HTMLElement} el  the element anywidget renders into
 * @param {HTMLElement} root  the widget's root
 * @param {string} message  what works without a kernel, and what needs one
 * @param {(HTMLInputElement | HTMLSelectElement | HTMLButtonElement)[]} [controls]  what only a kernel can answer
 * @param {(live: boolean) => void} [onChange]  called whenever the kernel comes or goes later (at first, ask live())
 * @returns {{ live: () => boolean, dispose: () => void }}
 */
export function kernelWatch(el, root, message, controls = [], onChange) {
  const note = h("div", { class: "cnnviz-offline", role: "status" });
  root.prepend(note);
  const live = () => !el.closest(".jupyter-widgets-disconnected");
  /** @type {boolean | null} */
  let was = null;
  const render = () => {
    const now = live();
    if (now === was) return;
    const first = was === null;
    was = now;
    note.textContent = now ? "" : `Not connected to a kernel (a saved page, or the kernel restarted: run the cell again). ${message}`;
    note.style.display = now ? "none" : "";
    root.dataset.offline = now ? "" : "1";
    for (const c of controls) c.disabled = !now;
    if (onChange && !first) onChange(now);
  };
  const watch = new MutationObserver(render);
  watch.observe(el, { attributes: true, attributeFilter: ["class"] });
  render();
  return { live, dispose: () => watch.disconnect() };
}

// the largest file sent to the kernel (widgets/uploads.py MAX_UPLOAD_BYTES): a larger one is not sent, only its
// size, and the kernel's message says the limit
export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024;

/**
 * New pictures for the kernel: a file picker, a drop onto ``root`` and a paste into it. Each file travels as the
 * binary buffer of a custom message ``{event: "upload", name}`` (widgets/uploads.py decodes it); a file over the
 * limit sends its size only. Returns the controls to put in the widget's row (the picker needs a kernel).
 * @param {import("@anywidget/types").AnyModel<any>} model  @param {HTMLElement} root
 * @returns {{ controls: HTMLElement, button: HTMLButtonElement, input: HTMLInputElement, send(file: File): void }}
 */
export function pictureInput(model, root) {
  const input = h("input", { type: "file", accept: "image/*", multiple: "", "aria-label": "Add your own photo",
                             style: "display:none" });
  const button = h("button", { class: "cnnviz-upload", text: "+ photo…", title: "Add your own photo (or drop one "
    + "onto the widget, or paste one): it joins the image list" });
  /** @param {File} file */
  const send = (file) => {
    if (file.size > MAX_UPLOAD_BYTES) { model.send({ event: "upload", name: file.name, size: file.size }); return; }
    file.arrayBuffer().then((buf) => model.send({ event: "upload", name: file.name, size: file.size }, undefined, [buf]));
  };
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => { Array.from(input.files || []).forEach(send); input.value = ""; });
  const live = () => !root.closest(".jupyter-widgets-disconnected") && !root.dataset.offline;
  root.addEventListener("dragover", (ev) => {
    if (!live() || !ev.dataTransfer || !Array.from(ev.dataTransfer.types).includes("Files")) return;
    ev.preventDefault(); root.classList.add("cnnviz-dropping");
  });
  root.addEventListener("dragleave", () => root.classList.remove("cnnviz-dropping"));
  root.addEventListener("drop", (ev) => {
    root.classList.remove("cnnviz-dropping");
    const files = Array.from(ev.dataTransfer?.files || []);
    if (!live() || !files.length) return;
    ev.preventDefault(); ev.stopPropagation();
    files.forEach(send);
  });
  root.addEventListener("paste", (ev) => {
    const files = Array.from(ev.clipboardData?.files || []);
    if (!live() || !files.length) return;
    ev.preventDefault();
    files.forEach(send);
  });
  return { controls: h("span", { class: "cnnviz-inputs" }, [button, input]), button, input, send };
}

/**
 * The webcam: a camera button opens a preview with "snapshot" (a picture that joins the list, as an upload),
 * "live" (where ``live`` is true: downscaled JPEG frames, at most ``fps`` a second and one in flight, each shown by
 * the kernel at the layer on screen) and "stop". Stop, a closed widget and a hidden tab release the camera; a
 * browser that refuses it (no permission, no HTTPS, none present) is said in the widget.
 * @param {import("@anywidget/types").AnyModel<any>} model  @param {HTMLElement} root
 * @param {{ live?: boolean, side?: () => number, fps?: number }} [options]  side: the shorter side of a live frame
 * @returns {{ controls: HTMLElement, button: HTMLButtonElement, stop(): void, dispose(): void, isLive(): boolean }}
 */
export function webcam(model, root, options = {}) {
  const fps = options.fps || 4;
  const button = h("button", { class: "cnnviz-camera", text: "camera", title: "Take a picture with your camera" });
  const video = h("video", { class: "cnnviz-video", muted: "", playsinline: "", "aria-label": "Camera preview" });
  const snap = h("button", { text: "snapshot", title: "This picture joins the image list" });
  const liveButton = h("button", { text: "▶ live", title: "Show the layer on screen for the camera's picture, a few times a second" });
  const stopButton = h("button", { text: "■ stop camera", title: "Release the camera" });
  const said = h("span", { class: "cnnviz-camera-note", "aria-live": "polite" });  // not .cnnviz-note: that is the widget's own line
  const panel = h("span", { class: "cnnviz-camera-panel", style: "display:none" },
                  [video, snap, ...(options.live ? [liveButton] : []), stopButton]);
  /** @type {MediaStream | null} */
  let stream = null;
  /** @type {number | undefined} */
  let timer;
  let shots = 0, frames = 0, inFlight = 0, sentAt = 0;
  const live = () => timer !== undefined;
  const say = (/** @type {string} */ text) => { said.textContent = text; root.dataset.camera = text ? "said" : root.dataset.camera || ""; };

  /** a JPEG of the preview, its shorter side at most ``side`` px  @param {number} side  @returns {Promise<Blob | null>} */
  function grab(side) {
    const w = video.videoWidth, hh = video.videoHeight;
    if (!w || !hh) return Promise.resolve(null);
    const s = Math.min(1, side / Math.min(w, hh));
    const canvas = h("canvas", { width: String(Math.round(w * s)), height: String(Math.round(hh * s)) });
    const g = canvas.getContext("2d");
    if (!g) return Promise.resolve(null);
    g.drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  }
  function stop() {
    if (timer !== undefined) { clearInterval(timer); timer = undefined; model.send({ event: "live", on: false }); }
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    panel.style.display = "none";
    liveButton.textContent = "▶ live";
    root.dataset.camera = "off";
  }
  async function open() {
    say("");
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This page cannot use a camera: browsers allow it only on HTTPS or localhost pages.");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
    } catch (e) {
      const name = e instanceof Error ? e.name : "";
      say(name === "NotAllowedError" ? "The browser refused the camera (no permission): allow it in the address bar, then try again."
        : name === "NotFoundError" || name === "OverconstrainedError" ? "No camera was found on this computer."
        : `The camera could not be opened (${name || String(e)}).`);
      return;
    }
    /** @type {any} */ (root).cnnvizStream = stream;  // the tests read its track's readyState
    video.srcObject = stream;
    panel.style.display = "";
    root.dataset.camera = "on";
    await video.play().catch(() => null);
  }
  button.addEventListener("click", () => { if (stream) stop(); else open(); });
  stopButton.addEventListener("click", stop);
  snap.addEventListener("click", async () => {
    const blob = await grab(1024);
    if (!blob) { say("The camera has no picture yet."); return; }
    shots += 1;
    const buf = await blob.arrayBuffer();
    model.send({ event: "upload", name: `webcam ${shots}.jpg`, size: buf.byteLength }, undefined, [buf]);
  });
  // live: a frame every 1/fps s while none is in flight (the kernel answers each with live_frame), so frames
  // never pile up behind a slow kernel; the kernel also drops a frame not yet started when a newer one comes
  liveButton.addEventListener("click", () => {
    if (live()) { clearInterval(timer); timer = undefined; liveButton.textContent = "▶ live"; model.send({ event: "live", on: false }); return; }
    liveButton.textContent = "pause live";
    inFlight = 0;
    model.send({ event: "live", on: true });
    timer = window.setInterval(async () => {
      if ((inFlight > 0 && performance.now() - sentAt < 5000) || !stream) return;  // an answer lost: go on after 5 s
      const blob = await grab(options.side ? options.side() : 224);
      if (!blob || !live()) return;
      inFlight += 1;
      frames += 1;
      sentAt = performance.now();
      const buf = await blob.arrayBuffer();
      model.send({ event: "frame", n: frames, t: performance.now() }, undefined, [buf]);
    }, 1000 / fps);
  });
  model.on("change:live_frame", () => { inFlight = 0; });
  const hidden = () => { if (document.visibilityState === "hidden") stop(); };
  document.addEventListener("visibilitychange", hidden);
  return {
    controls: h("span", { class: "cnnviz-inputs" }, [button, panel, said]),
    button, stop, isLive: live,
    dispose: () => { stop(); document.removeEventListener("visibilitychange", hidden); },
  };
}
