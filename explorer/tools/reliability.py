"""Feed the loaders bad input on purpose and count what happens, for the benchmark's table.

    counts = run_reliability(report=True)
    counts["checkpoints"]  # {"tried": 160, "refused": 120, "accepted": 40, "crashes": 0, "lost": 0}

Categories: ``checkpoints`` (cuts, flipped bytes, random bytes, payload pickles of a valid tiny
checkpoint), ``corpora`` (random line soups under errors="skip") and ``sentences`` (hostile text
through prepare_source and greedy). ``refused`` is a clean one-line ValueError naming the input;
``crashes`` is any other exception, or a refusal spanning several lines; ``lost`` counts accepted
inputs that lost data: non-finite weights after loading a checkpoint, non-blank corpus lines that
became neither a pair nor a skipped entry, a payload that ran.

``run_hostile`` runs the command line against the hostile files of ``explorer.tools.hostile``
(one class of attack each) in a child process under a memory cap, and counts per class how
each case ended: refused cleanly, accepted with its output checked, or crashed, hung, ran past
the cap, touched a file outside its --out, refused unclearly, or ended the wrong way.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import random
import tempfile
from pathlib import Path

import torch

from explorer.seq2seq.checkpoint import CheckpointError, load_checkpoint
from explorer.seq2seq.data.corpus import CorpusError, load_corpus
from explorer.seq2seq.data.inputs import prepare_source, source_limit
from explorer.seq2seq.decoding.decode import greedy
from explorer.seq2seq.models.base import EOS

MARKER = "RELIABILITY_PAYLOAD_RAN"
FIELDS = ("tried", "refused", "accepted", "crashes", "lost")


class _Payload:
    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(MARKER),)


def _counts() -> dict[str, int]:
    return dict.fromkeys(FIELDS, 0)


def _refused(counts: dict[str, int], e: Exception, name: str) -> None:
    clean = "\n" not in str(e) and name in str(e)
    counts["refused" if clean else "crashes"] += 1


def _tiny_checkpoint(folder: Path) -> tuple[bytes, object, object]:
    """The bytes of a valid tiny Transformer checkpoint, its model and tokenizer."""
    from explorer.tools.hostile import save_tiny

    path = save_tiny(folder / "valid.safetensors")
    loaded = load_checkpoint(path)
    return path.read_bytes(), loaded.model, loaded.tokenizer


def _checkpoint_cases(valid: bytes, rng: random.Random, n: int) -> list[bytes]:
    cases = [pickle.dumps(_Payload()), pickle.dumps(_Payload(), protocol=0), b""]
    for _ in range(n):
        cases.append(valid[: rng.randrange(len(valid))])
        flipped = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= rng.randint(1, 255)
        cases.append(bytes(flipped))
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 512))))
    return cases


def _try_checkpoints(folder: Path, valid: bytes, rng: random.Random, n: int) -> dict[str, int]:
    counts = _counts()
    for i, data in enumerate(_checkpoint_cases(valid, rng, n)):
        path = folder / f"case{i}.safetensors"
        path.write_bytes(data)
        counts["tried"] += 1
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as e:
            _refused(counts, e, str(path))
        except Exception:
            counts["crashes"] += 1
        else:
            counts["accepted"] += 1
            finite = all(
                bool(torch.isfinite(t).all())
                for t in loaded.model.state_dict().values()
                if t.is_floating_point()
            )
            counts["lost"] += not finite
        path.unlink()
    counts["lost"] += (folder / MARKER).exists()
    return counts


def _non_blank(data: bytes) -> int:
    count = 0
    for i, raw in enumerate(data.splitlines()):  # LF, CRLF and a lone CR end a line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            count += 1
            continue
        count += bool((text.removeprefix("\ufeff") if i == 0 else text).strip())
    return count


def _try_corpora(folder: Path, rng: random.Random, n: int) -> dict[str, int]:
    pieces = ["the cat", "\t", " ", "", "\r", "\ufeff", "é", "日本", "😀", "\u2028", "a\tb"]
    counts = _counts()
    for i in range(n):
        if i % 4 == 3:
            data = bytes(rng.randrange(1, 256) for _ in range(rng.randint(0, 200)))
        else:
            lines = ["".join(rng.choices(pieces, k=rng.randint(0, 5))) for _ in range(8)]
            data = "\n".join(lines).encode("utf-8")
            if i % 4 == 2:
                data += "caf\u00e9\tcaf\u00e9\n".encode("latin-1")
        path = folder / f"case{i}.tsv"
        path.write_bytes(data)
        counts["tried"] += 1
        try:
            corpus = load_corpus(str(path), errors="skip")
        except CorpusError as e:
            _refused(counts, e, str(path))
        except Exception:
            counts["crashes"] += 1
        else:
            counts["accepted"] += 1
            counts["lost"] += len(corpus.pairs) + len(corpus.skipped) != _non_blank(data)
    return counts


SENTENCES = [
    "the cat sleeps",
    "",
    "   ",
    "😀 👩‍👩‍👧",
    "猫が寝ている",
    "\u200fהחתול ישן",
    "the\x00cat",
    "?! ... ¿",
    "\x07\x1b[31m",
    "the cat sleeps " * 400,
]


def _try_sentences(model, tok) -> dict[str, int]:
    counts = _counts()
    limit = source_limit(model)
    for text in SENTENCES:
        counts["tried"] += 1
        try:
            ids, _ = prepare_source(tok, text, max_tokens=limit)
            trace = greedy(model, tok, ids, max_len=limit - 1)
        except ValueError as e:
            counts["refused" if "\n" not in str(e) else "crashes"] += 1
        except Exception:
            counts["crashes"] += 1
        else:
            counts["accepted"] += 1
            counts["lost"] += not (ids[-1] == EOS and 1 <= len(trace.steps) < limit)
    return counts


def run_reliability(report: bool = True, cases: int = 40, seed: int = 0) -> dict:
    """Counts per category (tried, refused, accepted, crashes, lost); prints a table if asked."""

    rng = random.Random(seed)
    torch.manual_seed(seed)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)  # a payload that ran would leave MARKER here
        try:
            valid, model, tok = _tiny_checkpoint(folder)
            results = {
                "checkpoints": _try_checkpoints(folder, valid, rng, cases),
                "corpora": _try_corpora(folder, rng, cases),
                "sentences": _try_sentences(model.eval(), tok),
            }
        finally:
            os.chdir(cwd)
    if report:
        print(f"{'category':<12}" + "".join(f"{f:>10}" for f in FIELDS))
        for name, counts in results.items():
            print(f"{name:<12}" + "".join(f"{counts[f]:>10}" for f in FIELDS))
    return results


# -- the command line against hostile files, in a child process under a memory cap ------------

# torch's CPU build needs under 1 GiB of address space for these tiny models; 4 GiB is the
# issue's bar for a blow-up, so a bomb that gets through fails its case instead of the machine.
MEMORY_CAP_BYTES = 4 * 2**30
CASE_SECONDS = 120  # the slowest case trains two steps in seconds; past this it hangs
RESTART = 3  # the child's exit status after a case that hung or ran out of memory
OUTCOMES = ("refused", "accepted", "crashes", "hangs", "memory", "unclear", "touched", "wrong")


class _Hang(Exception):
    pass


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` (but its tmp/) with its size and modification time."""
    found = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if not rel.startswith("tmp/") and rel != "tmp":
            st = path.lstat()
            found[rel] = (st.st_size, st.st_mtime_ns)
    return found


def _run_one(case: dict) -> dict:
    """Run one case's command line in this process; its exit status, output and what it wrote."""
    import contextlib
    import io
    import signal
    import sys

    from explorer.cli import run

    def hang(*_):
        raise _Hang

    before = _snapshot(Path.cwd())
    out, err = io.StringIO(), io.StringIO()
    stdin = open(case["stdin"], "rb") if case["stdin"] else io.BytesIO(b"")  # noqa: SIM115
    saved_stdin, sys.stdin = sys.stdin, io.TextIOWrapper(stdin)
    signal.signal(signal.SIGALRM, hang)
    signal.alarm(CASE_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status: int | str = run(case["argv"])
    except _Hang:
        status = "hang"
    except MemoryError:
        status = "memory"
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 2
    except BaseException as e:  # noqa: BLE001  (counting crashes is the point)
        status = "memory" if "can't allocate memory" in str(e) else "crash"
        err.write(f"{type(e).__name__}: {e}\n")
    finally:
        signal.alarm(0)
        sys.stdin = saved_stdin
        stdin.close()
    after = _snapshot(Path.cwd())
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    return {
        "name": case["name"],
        "status": status,
        "stdout": out.getvalue()[-20_000:],
        "stderr": err.getvalue()[-4_000:],
        "touched": sorted(changed - {case["out"]}),
    }


def _worker(folder: str, todo: str) -> None:
    """The child: each case in turn, one JSON line of result per case on standard output; after a
    hang or an exhausted memory it exits, and a fresh child takes the remaining cases."""
    import json
    import sys

    os.chdir(folder)
    for case in json.loads(Path(todo).read_text()):
        result = _run_one(case)
        print(json.dumps(result), file=sys.__stdout__, flush=True)
        if result["status"] in ("hang", "memory"):  # what it left behind would spoil the rest
            os._exit(RESTART)


def _cap_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def run_cases(folder: Path, cases: list) -> list[dict]:
    """Every case's result, from children under the memory cap; a child that dies (a signal, a
    crash in C) costs the case it was running, and a new child takes the rest."""
    import dataclasses
    import json
    import subprocess
    import sys

    (folder / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(folder / "tmp"), ATTENTION_EXPLORER_CACHE="off",
               MALLOC_ARENA_MAX="2", PYTHONFAULTHANDLER="1")  # fmt: skip
    todo, results = [dataclasses.asdict(c) for c in cases], []
    while todo:
        (folder / "tmp" / "todo.json").write_text(json.dumps(todo))
        code = (
            f"import explorer.tools.reliability as r; r._worker({str(folder)!r}, 'tmp/todo.json')"
        )
        try:
            child = subprocess.run(
                [sys.executable, "-c", code], cwd=folder, env=env, preexec_fn=_cap_memory,
                capture_output=True, text=True, timeout=CASE_SECONDS * len(todo) + 120,
            )  # fmt: skip
            lines, why = child.stdout.splitlines(), f"exit status {child.returncode}"
            tail = child.stderr[-2000:]
        except subprocess.TimeoutExpired as e:
            lines, why, tail = (e.stdout or b"").decode().splitlines(), "hang", ""
        done = [json.loads(line) for line in lines if line.startswith("{")]
        results += done
        todo = todo[len(done) :]
        if todo and why != f"exit status {RESTART}":  # the child died in the middle of todo[0]
            status = "hang" if why == "hang" else "crash"
            results.append({"name": todo[0]["name"], "status": status, "stdout": "",
                            "stderr": f"child died: {why}\n{tail}", "touched": []})  # fmt: skip
            todo = todo[1:]
    return results


def judge(case, result: dict) -> str:
    """One of OUTCOMES: what happened, the worst first."""
    from explorer.tools.hostile import CHECKS

    status = result["status"]
    if status in ("hang", "memory"):
        return "hangs" if status == "hang" else "memory"
    if status not in (0, 2):
        return "crashes"
    if result["touched"]:
        return "touched"
    if status == 2:
        errors = [line for line in result["stderr"].splitlines() if line.startswith("error:")]
        named = len(errors) == 1 and case.names in errors[0]
        if "Traceback" in result["stderr"] or not named:
            return "unclear"
        return "refused" if case.expect == "refused" else "wrong"
    try:
        passed = CHECKS[case.check](result["stdout"])
    except ValueError:
        passed = False
    return "accepted" if passed and case.expect == "accepted" else "wrong"


def run_hostile(classes: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Per class of hostile file, how many cases ended in each of OUTCOMES, and the cases that
    did not end as they must (``failures``: name, outcome and the end of standard error)."""
    from explorer.tools.hostile import CLASSES, hostile_cases

    classes = classes or CLASSES
    with tempfile.TemporaryDirectory() as tmp:
        cases = hostile_cases(Path(tmp), classes)
        results = run_cases(Path(tmp), cases)
    table = {cls: dict.fromkeys(("tried", *OUTCOMES), 0) | {"failures": []} for cls in classes}
    for case, result in zip(cases, results, strict=True):
        outcome = judge(case, result)
        row = table[case.cls]
        row["tried"] += 1
        row[outcome] += 1
        if outcome != case.expect:
            row["failures"].append((case.name, outcome, result["stderr"][-600:]))
    return table


HOSTILE_COLUMNS = {
    "tried": "cases",
    "refused": "refused cleanly",
    "accepted": "accepted, output checked",
    "crashes": "crashes",
    "hangs": f"hangs (> {CASE_SECONDS} s)",
    "memory": f"over {MEMORY_CAP_BYTES // 2**30} GiB",
    "touched": "files touched outside --out",
    "unclear": "refusals not one line naming the file",
    "wrong": "wrong outcome",
}


def hostile_section(table: dict[str, dict]) -> str:
    """The hostile-file table in Markdown, with how it was measured."""
    head = "| class | " + " | ".join(HOSTILE_COLUMNS.values()) + " |"
    lines = [head, "|" + "---|" * (len(HOSTILE_COLUMNS) + 1)]
    for cls, row in table.items():
        lines.append(f"| {cls} | " + " | ".join(str(row[k]) for k in HOSTILE_COLUMNS) + " |")
    failures = [f"{cls}: {name} ({outcome})" for cls, row in table.items()
                for name, outcome, _ in row["failures"]]  # fmt: skip
    about = (
        "Hostile files of issue 15 through the command line (`explorer/tools/hostile.py`): each "
        "case runs in a child process capped at "
        f"{MEMORY_CAP_BYTES // 2**30} GiB of address space (RLIMIT_AS), stopped after "
        f"{CASE_SECONDS} s, with every file in its folder compared before and after. "
        "Regenerated by `attention-explorer bench --only reliability`."
    )
    return "\n".join([about, "", *lines, "", "Failed: " + ("; ".join(failures) or "none") + "."])
