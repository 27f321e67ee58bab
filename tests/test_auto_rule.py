

def test_the_rf_table_keeps_the_theoretical_field_and_says_the_effective_one(lite):
    plain = cv.ReceptiveFieldTable({"Lite0": lite})
    rows, eff = plain.rows[0], plain.effective[0]
    assert plain.error == "" and plain.input_sizes == [224] and len(eff) == len(rows)
    for (name, kind, size, stride), e in zip(rows, eff):
        assert size == lite.receptive_field(name).size  # Tables 1-2: the theoretical field
        assert e == ("whole picture" if size > 224 else ""), name
    torch.manual_seed(0)
    small = cv.Probe(seeded(NoPools), input_size=8, device="cpu")  # fields 3, 7, 15 px on an 8 px picture
    pictures = [np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8) for i in range(3)]
    t = cv.ReceptiveFieldTable({"small": small}, images=pictures)
    x = small.preprocess(pictures)
    e = effective_field(small, x, small.layer_names[-1])
    assert [r[2] for r in t.rows[0]] == [3, 7, 15]
    assert t.effective[0] == ["", "", "whole picture" if e.size >= 8 else str(e.size)]
    from cnnviz_widgets.widgets.rf_table import _table_figure  # noqa: F401 - the saved table has the column too
    texts = [x.get_text() for x in t.to_figure().texts]
    assert "effective (8 px picture)" in texts and t.effective[0][-1] in texts
