"""What the class is looking at now: the one source of truth behind every view.

A :class:`Session` holds the open models and the current one (from :class:`AppState`), the
sentence, the decode mode and its settings, the current ``Trace`` and step, the forced-prefix
history, the beam settings and the beam search's result, exact search, the sweep and the
comparison model. Every change goes through its methods; ``changed(part)`` says which part changed,
and views redraw from the session's records. A record that is not there has a reason
(``why(part)``): "computing…", "not computed for this sentence yet", "no model loaded"…

Model work runs through the :mod:`runner`, one kind per part: a newer request (or a change of
model or sentence) makes older jobs stale, and a result is kept only when its origin (model name
and source text) is still the session's. Nothing here needs a window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import Signal

from explorer.gui.runner import Runner, runner
from explorer.gui.state import MAX_UNSAVED, AppState, LoadedModel
from explorer.seq2seq.decoding.trace import SourceRecord, Trace
from explorer.seq2seq.messages import first_line

COMPUTING = "computing…"
NOT_YET = "not computed for this sentence yet"
NO_MODEL = "no model loaded: train one (Train & Load) or open a checkpoint (Ctrl+O)"
NO_SENTENCE = "type a sentence to translate"
MODES = ("greedy", "sample", "teacher-forced")
PARTS = ("trace", "compare", "compare2", "beam", "exact", "sweep")
COMPARES = ("compare", "compare2")  # the second and third model on the sentence, decoded greedily
DECODED = ("trace", "beam", *COMPARES)  # parts computed as soon as a view wants them
LABELS = {"trace": "Decoding", "compare": "The comparison", "compare2": "The third model",
          "beam": "Beam search", "exact": "Exact search", "sweep": "Beam sweep"}  # fmt: skip


@dataclass(frozen=True)
class Stamped:
    """A result that does not name its origin itself (exact search, the sweep), with it."""

    origin: SourceRecord
    value: Any


@dataclass(frozen=True)
class SweepRecord:
    """The beam-size sweep of one model over one test set, as far as it has got."""

    origin: SourceRecord  # the model, and the test set in place of a sentence
    points: tuple[tuple[int, float, float], ...] = ()  # (beam, BLEU, average length)
    done: bool = False


def default_search(entry: LoadedModel, source: str, params: dict) -> Any:
    from explorer.seq2seq.decoding.beam import beam_search

    kw = dict(record_tree=True, with_greedy=True, **params)
    return beam_search(entry.model, entry.tokenizer, [entry.encode(source)], **kw)[0]


def default_sweep(entry: LoadedModel, sources: list[str], params: dict) -> list[str]:
    """The best hypothesis's text for each source, batched and without recording the tree."""
    from explorer.seq2seq.decoding.beam import beam_search

    prepared = [entry.encode(s) for s in sources]
    kw = dict(record_tree=False, with_greedy=False, **params)
    return [r.nbest[0].text for r in beam_search(entry.model, entry.tokenizer, prepared, **kw)]


def default_exact(entry: LoadedModel, source: str, params: dict) -> Any:
    from explorer.seq2seq.decoding.search import exact_search

    return exact_search(entry.model, entry.tokenizer, entry.encode(source), **params)


def decode_job(
    entry: LoadedModel, fn: str, source: str, *args, notify: Callable | None = None, **kwargs
) -> Trace:
    """In a worker: one decode of ``explorer.seq2seq.decoding.decode`` of ``source`` read through
    the input policy (``notify`` is told the line saying when it was cut and which words the
    model never saw in training or read as ``<unk>``, "" when there is none to say), named
    after the model."""
    from explorer.seq2seq.decoding import decode

    src = entry.encode(source)
    if notify is not None:  # cut to what the model takes; words outside its world
        notify("; ".join(line for line in (src.notice, src.outside) if line))
    trace = getattr(decode, fn)(entry.model, entry.tokenizer, src, *args, **kwargs)
    return trace.named(entry.name)


def stamp_beam(entry: LoadedModel, result: Any) -> Any:
    """A BeamResult whose tree and greedy decode name the model that computed them."""
    tree = result.tree.named(entry.name) if result.tree is not None else None
    greedy = result.greedy.named(entry.name) if result.greedy is not None else None
    return replace(result, tree=tree, greedy=greedy)


class Session(AppState):
    """The lesson's state; see the module's docstring."""

    changed = Signal(str)  # "sentence", "settings", "step", or one of PARTS

    def __init__(self, max_unsaved: int = MAX_UNSAVED, run: Runner | None = None) -> None:
        super().__init__(max_unsaved)
        self.runner = run or runner()
        self.sentence = ""
        self.reference = ""
        self.mode = "greedy"
        self.temperature = 1.0
        self.beam_params = {
            "beam": 5, "nbest": 3, "max_len": 40, "length_penalty": "none", "alpha": 0.0,
            "beta": 0.0,
        }  # fmt: skip
        self.wants: set[str] = set()  # parts a view shows, computed as soon as they can be
        self.compare_names: dict[str, str | None] = dict.fromkeys(COMPARES)
        self.step = 0
        self.original: Trace | None = None  # the trace before the first forced token
        self.forced: list[tuple[int, int]] = []  # (step, token) of each forced token, in order
        self.edits: tuple = ()  # the AttentionEdits of the trace on show (edit.edited_greedy)
        self.records: dict[str, Any] = dict.fromkeys(PARTS)
        self._said = ""  # the status line on the source of the sentence on show
        self._why: dict[str, str] = dict.fromkeys(PARTS, NO_MODEL)
        self.search_fn: Callable = default_search
        self.exact_fn: Callable = default_exact
        self.sweep_fn: Callable = default_sweep
        self.current_changed.connect(lambda _: self._renew(PARTS))
        self.models_changed.connect(self._models_changed)

    # -- reading -------------------------------------------------------------------------------
    @property
    def trace(self) -> Trace | None:
        return self.records["trace"]

    @property
    def beam(self) -> Any:
        """The BeamResult on show (tree, greedy decode, n-best), or None."""
        return self.records["beam"]

    def why(self, part: str) -> str:
        """Why ``part`` has no record ("" when it has one)."""
        return "" if self.records[part] is not None else self._why[part]

    def source(self, entry: LoadedModel | None = None) -> str:
        """The sentence as ``entry`` (the current model) reads it."""
        entry = entry or self.current
        return entry.prepare(self.sentence) if entry is not None and self.sentence else ""

    def expected(self, entry: LoadedModel | None = None) -> tuple[str, str] | None:
        """(model name, source text) every sentence record must have; None without a model."""
        entry = entry or self.current
        return None if entry is None else (entry.name, self.source(entry))

    @property
    def compare_name(self) -> str | None:
        return self.compare_names["compare"]

    def compare_entry(self, part: str = "compare") -> LoadedModel | None:
        name = self.compare_names[part]
        return self.by_name(name) if name else None

    # -- changes -------------------------------------------------------------------------------
    def want(self, *parts: str) -> None:
        """A view shows these parts: compute them whenever they are missing."""
        new = set(parts) - self.wants
        self.wants |= new
        for part in new:
            if self.records[part] is None and part in DECODED:
                self._start(part)

    def set_sentence(self, text: str) -> None:
        text = " ".join(text.split())
        if text == self.sentence:
            return
        self.sentence = text
        self.changed.emit("sentence")
        self._renew(("trace", *COMPARES, "beam", "exact"))

    def set_decode(self, mode: str, temperature: float, reference: str) -> None:
        """Decode mode and its settings; the step trace is decoded again."""
        if mode not in MODES:
            raise ValueError(f"unknown decode mode {mode!r}; expected one of {', '.join(MODES)}")
        self.mode, self.temperature, self.reference = mode, float(temperature), reference
        self.changed.emit("settings")
        self._renew(("trace",))

    def set_beam_params(self, **params: Any) -> None:
        unknown = set(params) - set(self.beam_params)
        if unknown:
            raise ValueError(f"unknown beam settings: {', '.join(sorted(unknown))}")
        new = {**self.beam_params, **params}
        new["nbest"] = min(new["nbest"], new["beam"])
        if new == self.beam_params:
            return
        self.beam_params = new
        self.changed.emit("settings")
        self._renew(("beam", "exact", "sweep"))

    def set_compare(self, name: str | None, part: str = "compare") -> None:
        """The model of a comparison part ("compare", or "compare2" for a third model)."""
        self.compare_names[part] = name or None
        self._renew((part,))

    def set_step(self, t: int) -> int:
        """Move to step t (clamped to the trace); the step now shown."""
        n = len(self.trace) if self.trace is not None else 0
        t = max(0, min(int(t), n - 1)) if n else 0
        if t != self.step:
            self.step = t
            self.changed.emit("step")
        return t

    def show_trace(self, entry: LoadedModel, trace: Trace) -> None:
        """Step through a trace decoded elsewhere (a beam hypothesis): its model becomes current
        (joining the models if it was not open) and its source the sentence."""
        if all(m is not entry for m in self.models):
            self.add(entry, make_current=False)
        self.set_current(entry)
        self.set_sentence(trace.source)
        self.runner.invalidate("trace")  # a decode of the sentence started above is not wanted
        self.original, self.forced, self.edits = None, [], ()
        self._set("trace", trace.named(entry.name), keep_step=0)

    def _models_changed(self) -> None:
        for part in COMPARES:
            if self.compare_names[part] and self.compare_entry(part) is None:  # it was closed
                self.set_compare(None, part)

    # -- jobs ----------------------------------------------------------------------------------
    def _renew(self, parts) -> None:
        """These parts no longer apply: drop them, and compute again those a view shows. A part
        computed again goes straight to "computing…": a passing "not computed yet" between the
        two read as a final answer to whoever waits for the part (a lesson stopped its scene)."""
        for part in parts:
            self.runner.invalidate(part)
            if part == "trace":
                self.original, self.forced, self.edits = None, [], ()
            if not (part in self.wants and part in DECODED and self._start(part)):
                self._clear(part, self._missing_reason(part))

    def _missing_reason(self, part: str) -> str:
        if self.current is None:
            return NO_MODEL
        if part == "sweep":
            return "not run for this model and these settings yet: press Run sweep"
        if not self.sentence:
            return NO_SENTENCE
        if part in COMPARES and self.compare_entry(part) is None:
            return f"pick a {'second' if part == 'compare' else 'third'} model to compare with"
        if part == "exact":
            return f"{NOT_YET}: press Run exact search"
        return NOT_YET

    def _clear(self, part: str, why: str) -> None:
        had = self.records[part] is not None or self._why[part] != why
        self.records[part], self._why[part] = None, why
        if part == "trace":
            self.step = 0
        if had:
            self.changed.emit(part)

    def _set(self, part: str, record: Any, keep_step: int | None = None) -> None:
        self.records[part], self._why[part] = record, ""
        if part == "trace":
            n = len(record)
            self.step = max(0, min(keep_step or 0, n - 1))
        self.changed.emit(part)

    def _fail(self, part: str, error: BaseException) -> None:
        first = first_line(error)
        self._clear(part, f"{LABELS[part]} stopped: {first}")
        self.error.emit(f"{LABELS[part]}: {first}")

    def _start(self, part: str) -> bool:
        """Compute ``part`` in the background; False when there is nothing to compute it from
        (no model, no sentence), the part left as it was."""
        entry = self.compare_entry(part) if part in COMPARES else self.current
        if entry is None or not self.sentence:
            return False
        if part == "trace" and self.mode == "teacher-forced" and not self.reference.strip():
            self._clear("trace", "teacher forcing needs a reference translation")
            return True
        said: list[str] = []  # the decode's line on its source, told in the worker
        job, args = self._job(part, entry, said.append)
        self._clear(part, COMPUTING)
        self._launch(part, entry, job, args, lambda r: self._landed(part, r, said))
        return True

    def _landed(self, part: str, record: Any, said: list[str]) -> None:
        """A decode's record is the sentence's now: the status bar says what it said of its
        source, or forgets the previous sentence's line when it said nothing (a decode
        overtaken by a newer sentence never lands, so never speaks)."""
        self._set(part, record)
        if part != "trace":  # only the trace's decode reads the source through the policy
            return
        line = said[-1] if said else ""
        if line or self._said:
            self.status.emit(line)
        self._said = line

    def _job(
        self, part: str, entry: LoadedModel, notify: Callable[[str], None]
    ) -> tuple[Callable, tuple]:
        src = self.source(entry)
        if part == "beam":
            return lambda *a: stamp_beam(entry, self.search_fn(*a)), (entry, src, self.params())
        if part in COMPARES:
            return decode_job, (entry, "greedy", src)
        if self.mode == "greedy":
            return lambda: decode_job(entry, "greedy", src, notify=notify), ()
        if self.mode == "sample":
            temperature = self.temperature
            return lambda: decode_job(
                entry, "sample", src, notify=notify, temperature=temperature
            ), ()
        reference = entry.prepare(self.reference)
        return lambda: decode_job(entry, "teacher_forced", src, reference, notify=notify), ()

    def _launch(self, part: str, entry: LoadedModel, job, args, done) -> None:
        expected = (entry.name, self.source(entry))
        if part in COMPARES:
            still = lambda: self.compare_entry(part) is entry  # noqa: E731
        else:
            still = lambda: self.current is entry  # noqa: E731

        def returned(result: Any) -> None:
            # a Trace or a Stamped names its origin; a BeamResult through its tree
            origin = (result.tree if hasattr(result, "tree") else result).origin
            if still() and (origin.model, origin.text) == expected:
                done(result)

        def errored(error: BaseException) -> None:
            if still():
                self._fail(part, error)

        self.runner.run(part, job, *args, returned=returned, errored=errored)

    def params(self) -> dict:
        return dict(self.beam_params)

    def force(self, token: int) -> None:
        """What if: ``token`` at the current step, then greedy decoding on from that prefix
        (attention edits at earlier steps stay)."""
        trace, t = self.trace, self.step
        if trace is None or self.current is None:
            return
        kept = tuple(e for e in self.edits if e.step < t)
        self._what_if([*trace.tokens[:t], int(token)], kept, t, lambda: self.forced.append(
            (t, int(token))))  # fmt: skip

    def restore(self) -> None:
        """Back to the decode before any token was forced or attention edited."""
        if self.original is not None:
            self.runner.invalidate("trace")
            t, original = self.step, self.original
            self.original, self.forced, self.edits = None, [], ()
            self._set("trace", original, keep_step=t)

    def edit_attention(self, edit: Any) -> None:
        """What if: an ``AttentionEdit`` at its step, with the earlier edits kept (later ones go:
        decoding goes on greedily from this step)."""
        trace = self.trace
        if trace is None or self.current is None or not 0 <= edit.step < len(trace):
            return
        key = (edit.step, edit.layer, edit.head)
        kept = [e for e in self.edits if e.step <= edit.step and (e.step, e.layer, e.head) != key]
        forced = [(t, token) for t, token in self.forced if t < edit.step]

        def then() -> None:
            self.forced = forced

        # the tokens before the step stay as they are (forced, sampled or the reference's)
        self._what_if(trace.tokens[: edit.step], (*kept, edit), edit.step, then)

    def _what_if(self, prefix: list[int], edits: tuple, t: int, then: Callable) -> None:
        """Decode again from ``prefix`` with ``edits``; the trace before the first what-if is
        kept as the original."""
        from explorer.seq2seq.decoding.edit import edited_greedy

        trace, entry = self.trace, self.current

        def job() -> Trace:
            src = entry.encode(trace.source)
            kw = dict(prefix=prefix or None)
            if not edits:
                return decode_job(entry, "greedy", trace.source, **kw)
            return edited_greedy(entry.model, entry.tokenizer, src, edits, **kw).named(entry.name)

        def done(new: Trace) -> None:
            if self.original is None:
                self.original = trace
            self.edits = edits
            then()
            self._set("trace", new, keep_step=t)

        self._launch("trace", entry, job, (), done)

    def run_exact(self) -> bool:
        """Exact search for the sentence with the beam's scoring; False when it cannot start."""
        entry = self.current
        if entry is None or not self.sentence:
            self.error.emit("Exact search: load a model and type a sentence first")
            return False
        p = self.params()
        params = {k: p[k] for k in ("max_len", "length_penalty", "alpha", "beta")}
        src = self.source(entry)

        def job() -> Stamped:
            return Stamped(SourceRecord(entry.name, src, ()), self.exact_fn(entry, src, params))

        self._clear("exact", f"searching every output of at most {p['max_len']} tokens…")
        self._launch("exact", entry, job, (), lambda r: self._set("exact", r))
        return True

    def run_sweep(self, load_pairs: Callable[[], list], test_set: str) -> bool:
        """BLEU and length for each beam size over a test set, point by point."""
        from explorer.gui.beam.sweep import BEAMS, sweep_job

        entry = self.current
        if entry is None:
            self.error.emit("Beam sweep: load or train a model first")
            return False
        params = self.params()

        def decode(sources: list[str], beam: int) -> list[str]:
            return self.sweep_fn(entry, sources, {**params, "beam": beam, "nbest": 1})

        self._set("sweep", SweepRecord(SourceRecord(entry.name, test_set, ())))

        def update(**change) -> None:
            if self.runner.generation("sweep") == gen and self.records["sweep"] is not None:
                self._set("sweep", replace(self.records["sweep"], **change))

        self.runner.run(
            "sweep", sweep_job, decode, load_pairs, BEAMS,
            yielded=lambda p: update(points=(*self.records["sweep"].points, p)),
            errored=lambda e: self._fail("sweep", e), finished=lambda: update(done=True),
        )  # fmt: skip
        gen = self.runner.generation("sweep")
        return True
