"""The Train panel's form: tokeniser, architecture, model sizes and training options.

Every field maps to one :class:`explorer.seq2seq.training.train.TrainOptions` field (or a field
of the family's model config); defaults come from the presets that train well.
:meth:`OptionsForm.options` builds the ``TrainOptions``; :meth:`OptionsForm.set_values` fills the
form from a preset.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

ARCHS = {
    "none": "No attention (fixed vector)",  # the tooltip says which vector
    "bahdanau": "Bahdanau (additive)",
    "luong-dot": "Luong dot",
    "luong-general": "Luong general",
    "transformer": "Transformer",
}
RNN_FIELDS = ("emb_dim", "hidden_dim", "layers", "cell", "bidirectional", "dropout")
TRANSFORMER_FIELDS = ("d_model", "heads", "enc_layers", "dec_layers", "d_ff", "dropout")

# TrainOptions' defaults for the fields the form shows (a test checks they match), so building the
# form does not import torch.
FORM_DEFAULTS = {
    "arch": "bahdanau",
    "vocab_size": 1000,
    "spm_type": "bpe",
    "steps": 3000,
    "batch_size": 64,
    "lr": 3e-3,
    "schedule": "step",
    "decay_every": 1000,
    "warmup": 400,
    "clip": 1.0,
    "label_smoothing": 0.0,
    "teacher_forcing": "constant",
    "tf_ratio": 1.0,
    "device": "auto",
    "cpu_amp": False,
    "eval_every": 250,
}
# The piece models the tokenizer trains (seq2seq.data.tokenizer.MODEL_TYPES; a test checks they
# match; sentencepiece's char and word models are not among them).
SPM_TYPES = ("bpe", "unigram")
RNN_DEFAULTS = {"emb_dim": 128, "hidden_dim": 256, "layers": 1, "cell": "gru",
                "bidirectional": True, "dropout": 0.1}  # fmt: skip
TRANSFORMER_DEFAULTS = {"d_model": 256, "heads": 4, "enc_layers": 3, "dec_layers": 3,
                        "d_ff": 1024, "dropout": 0.1}  # fmt: skip

TIPS = {
    "preset": "A recipe of settings known to train well; choosing one fills in every field.",
    "spm_type": "How sentencepiece cuts words into pieces: BPE merges frequent pairs of symbols, "
    "unigram keeps the most probable pieces.",
    "vocab_size": "Number of pieces per language: small vocabularies split rare words into "
    "subwords, large ones keep whole words.",
    "arch": "No attention squeezes the whole sentence into one context vector (the bottleneck); "
    "Bahdanau scores v·tanh(W_s s + W_h h_i), Luong scores s·h_i (dot) or s·W h_i (general); "
    "the Transformer uses scaled dot-product self- and cross-attention.",
    "emb_dim": "Size of the word embedding vector fed to the RNN at every step.",
    "hidden_dim": "Size of the RNN hidden state h_t: the network's memory of what it has read.",
    "layers": "Number of stacked RNN layers; 2–3 are enough for translation.",
    "cell": "GRU or LSTM: gated cells that keep information over long sentences.",
    "bidirectional": "The encoder reads the sentence left to right and right to left, so each "
    "h_i knows the words on both sides.",
    "dropout": "Randomly zeroes activations while training: fights overfitting and mode collapse "
    "(0.3 if the model repeats itself).",
    "d_model": "Width of every Transformer vector (embeddings, attention, residual stream).",
    "heads": "Number of attention heads: each head attends with its own Q, K, V projections.",
    "enc_layers": "Number of encoder layers (self-attention + feed-forward).",
    "dec_layers": "Number of decoder layers (masked self-attention, cross-attention, "
    "feed-forward).",
    "d_ff": "Size of the hidden layer of each position-wise feed-forward network.",
    "steps": "Number of optimiser updates (batches) to train for.",
    "batch_size": "Sentence pairs per update; 32–64 is a good size.",
    "lr": "Learning rate of Adam; if the loss explodes, lower it.",
    "schedule": "How the learning rate changes: constant; step (halve it every N steps); noam "
    "(warm up, then decay with 1/√step, as in the Transformer paper).",
    "decay_every": "Step schedule: multiply the learning rate by 0.5 every this many steps.",
    "warmup": "Noam schedule: steps over which the learning rate rises to its peak.",
    "teacher_forcing": "Teacher forcing feeds the true previous word to the decoder while "
    "training; the schedule lowers it over time (constant, linear to 0, or 100% → 50% → 0%) "
    "so the model learns to recover from its own mistakes.",
    "tf_ratio": "Probability of feeding the true previous word (1.0 = always teacher forcing).",
    "label_smoothing": "Moves a little probability from the correct word to all others, so the "
    "model is not over-confident (0.1 in the Transformer paper).",
    "clip": "Gradient clipping: rescale the gradient when its norm exceeds this value; "
    "essential for RNNs (1.0 works well). 0 turns clipping off.",
    "eval_every": "Evaluate (validation loss, BLEU, probe attention) every this many steps.",
    "device": "Where to train: auto picks a CUDA GPU, then Apple MPS, then the CPU.",
    "cpu_amp": "On the CPU, multiply in bfloat16 (weights, loss and evaluation stay float32): "
    "about 1.5 times the sentences a second where the processor has AVX-512 BF16 or AMX, and "
    "as much learned per step. A GPU always trains in mixed precision.",
}

NO_BFLOAT16 = "This processor has no bfloat16 arithmetic: it would train slower, not faster."


def _spin(lo: int, hi: int, step: int = 1) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setKeyboardTracking(False)
    return w


def _dspin(lo: float, hi: float, step: float, decimals: int) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setDecimals(decimals)
    w.setKeyboardTracking(False)
    return w


def _combo(items: dict[str, str] | list[str]) -> QComboBox:
    w = QComboBox()
    pairs = items.items() if isinstance(items, dict) else [(x, x) for x in items]
    for value, text in pairs:
        w.addItem(text, value)
    return w


def _set_combo(w: QComboBox, value: Any) -> None:
    i = w.findData(value)
    if i < 0:
        raise ValueError(f"{w.objectName()}: unknown value {value!r}")
    w.setCurrentIndex(i)


RNN_ROWS = [("emb_dim", "Embedding"), ("hidden_dim", "Hidden"), ("layers", "Layers"),
            ("cell", "Cell"), ("bidirectional", "")]  # fmt: skip
TRANSFORMER_ROWS = [("d_model", "d_model"), ("heads", "Heads"), ("enc_layers", "Encoder layers"),
                    ("dec_layers", "Decoder layers"), ("d_ff", "d_ff")]  # fmt: skip
TRAINING_ROWS = [
    ("dropout", "Dropout"), ("steps", "Steps"), ("batch_size", "Batch size"),
    ("lr", "Learning rate"), ("schedule", "LR schedule"), ("decay_every", "Decay every"),
    ("warmup", "Warm-up"), ("teacher_forcing", "Teacher forcing"), ("tf_ratio", "Forcing ratio"),
    ("label_smoothing", "Label smoothing"), ("clip", "Gradient clip"),
    ("eval_every", "Evaluate every"), ("device", "Device"), ("cpu_amp", ""),
]  # fmt: skip


class OptionsForm(QWidget):
    """Architecture, sizes and training options; defaults from the preset of each architecture."""

    arch_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from explorer.seq2seq.training.presets import PRESETS

        self.fields: dict[str, QWidget] = {}
        self.preset = _combo(["(custom)", *PRESETS])
        self.arch = _combo(ARCHS)
        self._make_fields()
        for name, w in [("preset", self.preset), ("arch", self.arch), *self.fields.items()]:
            w.setObjectName(name)
            w.setToolTip(TIPS[name])
        top = QGroupBox("Model")
        form = QFormLayout(top)
        form.addRow("Preset", self.preset)
        form.addRow("Architecture", self.arch)
        form.addRow("Pieces", self.fields["spm_type"])
        form.addRow("Vocabulary", self.fields["vocab_size"])
        self.rnn_box = self._group("RNN encoder-decoder", RNN_ROWS)
        self.tf_box = self._group("Transformer", TRANSFORMER_ROWS)
        train = self._group("Training", TRAINING_ROWS)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for box in (top, self.rnn_box, self.tf_box, train):
            lay.addWidget(box)

        self.preset_values: dict[str, Any] = {}
        self.arch.currentIndexChanged.connect(self._on_arch)
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.set_values(PRESETS["classroom-bahdanau"])
        with QSignalBlocker(self.preset):  # the form holds that preset's values: say so
            self.preset.setCurrentIndex(self.preset.findData("classroom-bahdanau"))

    def _make_fields(self) -> None:
        f = self.fields
        f["spm_type"] = _combo(list(SPM_TYPES))
        f["vocab_size"] = _spin(16, 64000, 100)
        f["emb_dim"] = _spin(4, 2048, 16)
        f["hidden_dim"] = _spin(4, 4096, 32)
        f["layers"] = _spin(1, 8)
        f["cell"] = _combo(["gru", "lstm"])
        f["bidirectional"] = QCheckBox("bidirectional encoder")
        f["dropout"] = _dspin(0.0, 0.9, 0.05, 2)
        f["d_model"] = _spin(8, 2048, 32)
        f["heads"] = _spin(1, 32)
        f["enc_layers"] = _spin(1, 12)
        f["dec_layers"] = _spin(1, 12)
        f["d_ff"] = _spin(8, 8192, 64)
        f["steps"] = _spin(1, 1_000_000, 100)
        f["batch_size"] = _spin(1, 4096, 8)
        f["lr"] = _dspin(1e-6, 1.0, 1e-4, 6)
        f["schedule"] = _combo(["constant", "step", "noam"])
        f["decay_every"] = _spin(1, 1_000_000, 100)
        f["warmup"] = _spin(1, 100_000, 50)
        f["teacher_forcing"] = _combo(["constant", "linear", "step"])
        f["tf_ratio"] = _dspin(0.0, 1.0, 0.05, 2)
        f["label_smoothing"] = _dspin(0.0, 0.5, 0.05, 2)
        f["clip"] = _dspin(0.0, 100.0, 0.5, 2)
        f["clip"].setSpecialValueText("off (no clipping)")  # shown at 0
        f["eval_every"] = _spin(1, 100_000, 50)
        f["device"] = _combo({"auto": "auto", "cpu": "CPU"})
        f["cpu_amp"] = QCheckBox("bfloat16 on the CPU")

    def _group(self, title: str, rows: list[tuple[str, str]]) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        for name, label in rows:
            form.addRow(label, self.fields[name])
        return box

    # -- presets ------------------------------------------------------------------------------
    def _on_arch(self) -> None:
        from explorer.seq2seq.training.presets import DEFAULT_PRESET, PRESETS

        arch = self.arch.currentData()
        if self.preset_values.get("arch") != arch:
            values = {
                k: v
                for k, v in PRESETS[DEFAULT_PRESET[arch]].items()
                if k not in ("corpus", "corpus_size")
            }
            self.set_values(values)
        self._show_family(arch)
        self.arch_changed.emit(arch)

    def _on_preset(self) -> None:
        from explorer.seq2seq.training.presets import PRESETS

        name = self.preset.currentData()
        if name in PRESETS:
            self.set_values(PRESETS[name])

    def _show_family(self, arch: str) -> None:
        self.rnn_box.setVisible(arch != "transformer")
        self.tf_box.setVisible(arch == "transformer")

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill the form from a dict of TrainOptions fields (a preset); others keep defaults."""
        merged = {**FORM_DEFAULTS, **values}
        family = TRANSFORMER_DEFAULTS if merged["arch"] == "transformer" else RNN_DEFAULTS
        model = {**family, **(merged.get("model") or {})}
        self.preset_values = dict(merged)
        self.arch.blockSignals(True)
        _set_combo(self.arch, merged["arch"])
        self.arch.blockSignals(False)
        for name, w in self.fields.items():
            if name in model:
                value = model[name]
            elif name in merged:
                value = merged[name]
            else:
                continue
            self._set(w, value)
        self._show_family(merged["arch"])
        self.arch_changed.emit(merged["arch"])

    @staticmethod
    def _set(w: QWidget, value: Any) -> None:
        if isinstance(w, QComboBox):
            _set_combo(w, value)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)

    def value(self, name: str) -> Any:
        w = self.fields[name]
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        return w.value()

    # -- devices ------------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        """Add every CUDA device and MPS when present (imports torch: call once it is loaded)."""
        import torch

        from explorer.seq2seq.training.options import describe_device, native_cpu_bfloat16

        combo: QComboBox = self.fields["device"]
        current = combo.currentData()
        combo.clear()
        combo.addItem("auto", "auto")
        for i in range(torch.cuda.device_count()):
            combo.addItem(f"cuda:{i} · {torch.cuda.get_device_name(i)}", f"cuda:{i}")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            combo.addItem("Apple GPU (MPS)", "mps")
        combo.addItem(describe_device(torch.device("cpu")), "cpu")
        i = combo.findData(current)
        combo.setCurrentIndex(max(0, i))
        native = native_cpu_bfloat16()  # emulated bfloat16 is slower than float32: not offered
        box: QCheckBox = self.fields["cpu_amp"]
        box.setEnabled(native is not False)
        box.setToolTip(TIPS["cpu_amp"] if native is not False else NO_BFLOAT16)
        if native is False:
            box.setChecked(False)

    # -- the options --------------------------------------------------------------------------
    def options(self, corpus: str, corpus_size: int | None):
        """The TrainOptions the form describes, for ``corpus``."""
        from explorer.seq2seq.training.train import TrainOptions

        arch = self.arch.currentData()
        family = TRANSFORMER_FIELDS if arch == "transformer" else RNN_FIELDS
        model = dict(self.preset_values.get("model") or {}) if self._same_family(arch) else {}
        model.update({name: self.value(name) for name in family})
        values = {
            k: v
            for k, v in self.preset_values.items()
            if k not in ("corpus", "corpus_size", "model", "out")
        }
        for name in self.fields:
            if name not in RNN_FIELDS and name not in TRANSFORMER_FIELDS:
                values[name] = self.value(name)
        values.update(arch=arch, model=model, corpus=corpus, corpus_size=corpus_size)
        values["epochs"] = None
        return TrainOptions.from_dict(values)

    def _same_family(self, arch: str) -> bool:
        stored = self.preset_values.get("arch")
        return (stored == "transformer") == (arch == "transformer")
