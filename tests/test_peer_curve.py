"""The learning-curve script beside JoeyNMT: JoeyNMT gets our Transformer preset's recipe, and
both trainers' validation lines are read into (minutes, step, BLEU) points (JoeyNMT itself is
not installed here)."""

from pathlib import Path

from explorer.seq2seq.training.presets import PRESETS
from explorer.tools.peer_curve import curve, joey_recipe, report


def test_joeynmt_gets_the_presets_recipe():
    preset = PRESETS["multi30k-de-en-transformer"]
    cfg = joey_recipe(Path("/data"), Path("/tmp/joey"))
    t, model = cfg["training"], cfg["model"]
    assert (t["batch_type"], t["batch_size"]) == ("token", preset["batch_tokens"])
    assert t["label_smoothing"] == preset["label_smoothing"]
    assert t["scheduling"] == "warmupinversesquareroot"
    assert (t["learning_rate"], t["learning_rate_warmup"]) == (preset["lr"], preset["warmup"])
    assert t["validation_freq"] == preset["eval_every"] and t["eval_metrics"] == ["bleu"]
    m = preset["model"]
    for side in ("encoder", "decoder"):
        s = model[side]
        assert (s["num_layers"], s["hidden_size"], s["num_heads"], s["ff_size"]) == (
            m["enc_layers" if side == "encoder" else "dec_layers"], m["d_model"], m["heads"],
            m["d_ff"],
        )  # fmt: skip
        assert s["layer_norm"] == m["norm"] and s["dropout"] == m["dropout"]
    assert model["tied_softmax"] is True
    assert cfg["data"]["dev"] == "/data/val"


def test_both_trainers_validation_lines_become_curves():
    ours = [
        (0.1, "  0%| 0/20000 [00:00<?, ?step/s]"),
        (4.1, "step 250: val loss 3.564, val BLEU 15.4, attention entropy 1.20, probe → 'a'"),
        (7.6, "step 500: val loss 2.707, val BLEU 25.9, attention entropy 1.10, probe → 'a'"),
    ]
    joey = [
        (3.0, "2026-12-06 11:00:00,000 - INFO - joeynmt.training - Epoch   1, Step:      200, "
              "Batch Loss: 4.1, Batch Acc: 0.2, Tokens per Sec: 900, Lr: 0.0008"),
        (5.5, "2026-12-06 11:02:30,000 - INFO - joeynmt.training - Epoch   1, Step:      250, "
              "Batch Loss: 3.9, Batch Acc: 0.3, Tokens per Sec: 910, Lr: 0.001"),
        (6.0, "2026-12-06 11:03:00,000 - INFO - joeynmt.prediction - Evaluation result (greedy): "
              "bleu:  12.34, loss:   3.80, ppl:  44.70, acc:   0.30, 0.0[sec]"),
    ]  # fmt: skip
    assert curve(ours, joey=False) == [(4.1, 250, 15.4), (7.6, 500, 25.9)]
    assert curve(joey, joey=True) == [(6.0, 250, 12.34)]
    text = report(curve(ours, False), curve(joey, True), {"ours, cased": 38.76}, 30, 1)
    assert "| 4.1 | 250 | 15.4 | 6.0 | 250 | 12.3 |" in text
    assert "| 7.6 | 500 | 25.9 | | | |" in text
    assert text.endswith("test2016, greedy: ours, cased 38.8")
