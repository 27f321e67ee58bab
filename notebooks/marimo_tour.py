import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="cnnviz-widgets in marimo")


@app.cell
def _():
    import marimo as mo

    mo.md(
        r"""
        # cnnviz-widgets in marimo

        Every widget of *Visualizing and Comparing Convolutional Neural Networks* (Yu et al.) in a marimo app:
        open it with `marimo edit notebooks/marimo_tour.py` (or serve it read-only with
        `marimo run notebooks/marimo_tour.py`).

        The networks here carry **seeded random weights** (the paper's AlexNet has no published weights, and
        this tour runs offline in a few seconds on a CPU), so the pictures show the architecture, not what a
        trained network learned. Load `cv.load_model("vgg16", weights="imagenet")` for the real thing.
        """
    )
    return (mo,)


@app.cell
def _():
    import torch

    import cnnviz_widgets as cv

    torch.manual_seed(0)
    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0))
    photos = cv.sample_images()[:4]
    return cv, photos, probe


@app.cell
def _(mo):
    mo.md(r"""
    ## What each layer keeps (Figure 4)

    Pick a photo, drag the slider (or press the arrow keys with the widget focused) through the layers,
    click the reconstruction for one unit, type a filter number, or click a top-5 bar for that class.
    """)
    return


@app.cell
def _(cv, mo, photos, probe):
    explorer = mo.ui.anywidget(cv.DeconvExplorer(probe, photos))
    explorer
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## The representation space of a layer (Figure 3), and its filters (Figure 7)

    Hover a patch to see it large, click it to show its strongest filters in the grid below it, drag a
    rectangle to zoom in, and press *back* to return.
    """)
    return


@app.cell
def _(cv, mo, photos, probe):
    _map = cv.EmbeddingMap(probe, photos, layer="c3", n_patches=600, grid=14, cell=24)
    _grid = cv.FilterGrid(probe, photos, layer="c3", k=4, page_size=16)
    _map.link(_grid)  # a click on the map shows the unit's strongest filters in the grid
    emap, grid = mo.ui.anywidget(_map), mo.ui.anywidget(_grid)
    mo.vstack([emap, grid])
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Two networks side by side (Figure 5)
    """)
    return


@app.cell
def _(cv, mo, photos, probe):
    alexnet = cv.Probe(cv.load_model("alexnet", weights=None, seed=0))
    compare = mo.ui.anywidget(cv.CompareModels(alexnet, probe, photos, depths=4,
                                               names=("torchvision AlexNet", "paper AlexNet")))
    compare
    return (alexnet,)


@app.cell
def _(mo):
    mo.md(r"""
    ## Receptive fields (Tables 1 and 2)
    """)
    return


@app.cell
def _(alexnet, cv, mo, probe):
    table = mo.ui.anywidget(cv.ReceptiveFieldTable({"torchvision AlexNet": alexnet, "paper AlexNet": probe}))
    table
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Sparsity per layer (Figure 6)

    `SparsityChart` is a bqplot chart in Jupyter; marimo shows the same chart as a static figure.
    """)
    return


@app.cell
def _(alexnet, cv, photos, probe):
    chart = cv.SparsityChart({
        "torchvision AlexNet": cv.sparsity(alexnet, photos, progress=False),
        "paper AlexNet": cv.sparsity(probe, photos, progress=False),
    })
    chart
    return


if __name__ == "__main__":
    app.run()
