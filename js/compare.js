// @ts-check
// CompareModels (paper Fig. 5): the input, then each model's reconstructions at matching depths in
// its own row, with its top-5 predictions.
import { h, blobImage, cnnvizRoot, statusParts, staleMark, predictionList, ruleControl, kernelWatch, pictureInput, webcam, textScale,
  imagePicker } from "./_shared.js";

/**
 * @typedef {import("./_shared.js").StatusTraits & import("./_shared.js").RuleTraits & {
 *   image_names: string[], image_index: number, input_png: DataView, model_names: string[], columns: string[][],
 *   rows: DataView[][], predictions: import("./_shared.js").Prediction[][], note: string, shown_image: number,
 *   shown_rule: string, drawn: string[][]
 * }} Traits  the synced traits of widgets/compare.py
 */

export default {
  /** @type {import("@anywidget/types").Render<Traits>} */
  render({ model, el }) {
    const root = cnnvizRoot(el, "Compare two networks");
    const { error, busy } = statusParts(model, root);
    textScale(model, root);
    const { select: picker, control: pickerControl } = imagePicker(model, () => markStale());
    const note = h("span", { class: "cnnviz-busy" });
    const display = h("div", { class: "cnnviz-note" });
    const table = h("div");
    const rule = ruleControl(model);
    const upload = pictureInput(model, root);
    const camera = webcam(model, root);
    root.append(error, h("div", { class: "cnnviz-row" }, [pickerControl, upload.controls, camera.controls, rule, busy, note]),
                display, table);
    const kernel = kernelWatch(el, root, "These are the saved image's pictures; another image or rule "
      + "needs a running kernel.", [picker, upload.button, camera.button, /** @type {HTMLSelectElement} */ (rule.querySelector("select"))]);
    /** @type {import("./_shared.js").BlobImage[]} */
    let imgs = [];
    function render() {
      imgs.forEach((i) => i.release());
      imgs = [];
      table.replaceChildren();
      // alt texts name the photo, each network's layer and the rule that drew it
      const photo = (model.get("image_names") || [])[model.get("shown_image")] ?? `image ${model.get("shown_image")}`;
      const input = blobImage({ alt: `input: ${photo}, as the networks see it` });
      input.setPNG(model.get("input_png"));
      imgs.push(input);
      (model.get("rows") || []).forEach((row, m) => {
        const cells = [h("div", { class: "cnnviz-figure" }, m === 0 ? [input, h("span", { text: "input" })] : [h("div", { style: "width:114px" })])];
        row.forEach((png, j) => {
          // the layer, and the rule that drew it ("guided (auto)") as its title
          const drawn = ((model.get("drawn") || [])[m] || [])[j] || "";
          const img = blobImage({ alt: `${model.get("model_names")[m]}, layer ${model.get("columns")[m][j]}: ${drawn || model.get("shown_rule") || model.get("rule")} `
            + `reconstruction of ${photo}` });
          img.setPNG(png);
          imgs.push(img);
          cells.push(h("div", { class: "cnnviz-figure", title: drawn ? `drawn by ${drawn}` : "" },
                       [img, h("span", { text: model.get("columns")[m][j] }), ...(drawn ? [h("span", { class: "cnnviz-note", text: drawn })] : [])]));
        });
        cells.push(h("div", { class: "cnnviz-compare-preds" }, [h("span", { class: "cnnviz-note", text: "top-5" }),
                                 h("ol", { class: "cnnviz-preds" }, predictionList((model.get("predictions") || [])[m]))]));
        // each network's name heads its own row, so no row reads as another's
        table.appendChild(h("strong", { class: "cnnviz-compare-name", text: model.get("model_names")[m] }));
        table.appendChild(h("div", { class: "cnnviz-compare-row" }, cells));
      });
      note.textContent = model.get("note");
      display.textContent = model.get("display");
      if (imgs.length > 1) root.dataset.ready = "1";
    }
    const markStale = () => staleMark(root, [table], () => model.get("shown_image") !== model.get("image_index")
                                                      || model.get("shown_rule") !== model.get("rule"));
    for (const t of ["rows", "input_png", "predictions", "note", "display", "drawn"]) model.on(`change:${t}`, render);
    for (const t of ["image_index", "shown_image", "rule", "shown_rule"]) model.on(`change:${t}`, markStale);
    render(); markStale();
    return () => { imgs.forEach((i) => i.release()); kernel.dispose(); camera.dispose(); };
  },
};
