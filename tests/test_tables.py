"""Architecture tables (layer_table) and the one table formatter every table of the kit goes through."""
import pytest

import gan_helpers as gh
import gankit


@pytest.mark.parametrize("arch", sorted(gankit.registry.ARCHS))
@pytest.mark.parametrize("cond", sorted(gankit.registry.CONDITIONINGS))
def test_layer_table_covers_every_parameter_and_ends_at_an_image_and_a_logit(arch, cond):
    cfg = gh.Config.sagan(arch=arch, cond=cond, g_ch=8, d_ch=8, g_attn=(), d_attn=())
    G, D = gh.build_models(cfg)
    g_rows, d_rows = gh.layer_table(G), gh.layer_table(D)
    assert sum(r["params"] for r in g_rows) == gh.count_parameters(G)
    assert sum(r["params"] for r in d_rows) == gh.count_parameters(D)
    assert g_rows[-1]["layer"] == "out" and g_rows[-1]["output"] == ((3 * 32 * 32,) if arch == "mlp" else (3, 32, 32))
    logit = [r["output"] for r in d_rows if r["layer"] in ("out", "linear")]
    assert logit in ([(1,)], [(1, 1, 1)])
    assert [r["output"] for r in d_rows if r["layer"] == "classifier"] == ([(10,)] if gankit.registry.CONDITIONINGS[cond].d_classifier else [])


def test_layer_table_names_attention_and_spectral_norm_and_follows_the_resolutions():
    G, D = gh.build_models(gh.Config.sagan(g_ch=16, d_ch=16, g_attn=(16,), d_attn=(16, 16)))
    g_rows, d_rows = gh.layer_table(G), gh.layer_table(D)
    assert [(r["layer"], r["type"], r["output"]) for r in g_rows[:5]] == [
        ("linear", "Linear + SN", (16 * 4 * 4,)), ("blocks.0", "GBlock", (16, 8, 8)),
        ("blocks.1", "GBlock", (16, 16, 16)), ("attns.1", "SelfAttention", (16, 16, 16)),
        ("blocks.2", "GBlock", (16, 32, 32))]
    assert ("attns.0", "SelfAttention × 2", (16, 16, 16)) in [(r["layer"], r["type"], r["output"]) for r in d_rows]


def test_format_table_markdown_and_escaped_latex():
    head, rows = ["arm", "best FD"], [["sn_gd*", "1,234 ± 0.5"], ["b", "2 × 3"]]
    assert gankit.tables.format_table(head, rows) == "| arm | best FD |\n|---|---|\n| sn_gd* | 1,234 ± 0.5 |\n| b | 2 × 3 |"
    latex = gankit.tables.format_table(head, rows, "latex").splitlines()
    assert latex[0] == r"\begin{tabular}{lr}" and latex[2] == r"arm & best FD \\"
    assert latex[4] == r"sn\_gd$^*$ & 1{,}234 $\pm$ 0.5 \\" and latex[5] == r"b & 2 $\times$ 3 \\"
    with pytest.raises(gh.GanError, match="choose 'markdown' or 'latex'"):
        gankit.tables.format_table(head, rows, "html")


def test_score_table_gives_every_measure_in_markdown_and_latex():
    r = {"fd": 1.26043, "kid": 0.0064061, "kid_std": 0.00059, "n_fake": 10000, "n_real": 10000, "metric": "FD (proxy)",
         "is": 4.6787, "is_std": 0.094, "is_metric": "IS (proxy)", "class_acc": 0.3136, "real_class_acc": 0.8588,
         "class_metric": "class accuracy (proxy)", "nn_ratio": 0.77595, "diversity": {"dup_fake": 0.00013, "dup_real": 0.00037},
         "prdc": {"precision": 0.71234, "recall": 0.4567, "features": "proxy features"}}
    md = gh.score_table({"SAGAN": r}).splitlines()
    assert md[2] == "| SAGAN | 1.26 | 0.006406 ± 0.00059 | 4.679 ± 0.094 | 0.314 (real 0.859) | 0.0001 (real 0.0004) | 0.776 | 0.712 / 0.457 |"
    assert md[-1] == "10000 generated vs 10000 real test images per model."
    latex = gh.score_table({"SAGAN": r, "DCGAN": {k: v for k, v in r.items() if k not in ("is", "nn_ratio", "prdc")}}, "latex")
    rows = latex.splitlines()
    assert rows[0] == r"\begin{tabular}{lrrrrrrr}" and rows[-1] == r"\end{tabular}"
    assert rows[4].startswith(r"SAGAN & 1.26 & 0.006406 $\pm$ 0.00059 & 4.679 $\pm$ 0.094") and rows[5].endswith(r"& 1.26 & 0.006406 $\pm$ 0.00059 & - & 0.314 (real 0.859) & 0.0001 (real 0.0004) & - & - \\")
