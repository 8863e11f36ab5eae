"""`attention-explorer bench --only X` replaces X's tables in BENCHMARKS.md and keeps the rest."""

from pathlib import Path

import pytest

from explorer.tools.bench import BEGIN, END, write_report


def block(date: str, sections: dict[str, str]) -> str:
    body = "".join(f"### {title}\n\n{table}\n\n" for title, table in sections.items())
    return f"{BEGIN}\n## Latest run\n\nDate {date}.\n\n{body}{END}"


def test_a_partial_run_replaces_its_own_tables_and_keeps_the_others(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    full = block(
        "day 1",
        {
            "Training throughput (CPU)": "| t | 1 |",
            "Decoding (CPU; 1000 sentences)": "| d | 1 |",
            "The GUI (offscreen)": "| g | 1 |",
        },
    )
    path.write_text(f"# Benchmarks\n\nhand-written\n\n{full}\n\nafter\n", encoding="utf-8")

    write_report(block("day 2", {"The GUI (offscreen)": "| g | 2 |"}), path, partial=True)

    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nhand-written\n\n") and text.endswith("\n\nafter\n")
    assert "Date day 2." in text and "Date day 1." not in text
    assert "| t | 1 |" in text and "| g | 2 |" in text and "| g | 1 |" not in text
    assert text.index("### Training") < text.index("### The GUI")  # the old order is kept
    assert "Re-run here: The GUI; kept from an earlier run: Training throughput, Decoding." in text


def test_a_full_run_replaces_the_whole_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(block("day 1", {"Training throughput": "| t | 1 |"}), encoding="utf-8")
    write_report(block("day 2", {"The GUI": "| g | 2 |"}), path)
    text = path.read_text(encoding="utf-8")
    assert "| t | 1 |" not in text and "| g | 2 |" in text and "kept from" not in text


# -- the reference oracles live in the checkout's tests/, not in the package --------------------
def test_bench_loads_the_oracles_from_the_checkout():
    import oracles

    from explorer.tools import oracles as loader

    assert loader.oracles_path() == Path(oracles.__file__).resolve()
    from explorer.tools.oracles import beam_search_reference, synthetic_beam_tree

    assert beam_search_reference.__doc__ == oracles.beam_search_reference.__doc__
    tree = synthetic_beam_tree(beam=2, steps=3, seed=0)
    assert len(tree) == len(oracles.synthetic_beam_tree(beam=2, steps=3, seed=0))


def test_without_a_checkout_only_the_reference_rows_are_skipped(tmp_path, monkeypatch, capsys):
    from explorer.tools import bench
    from explorer.tools import oracles as loader

    monkeypatch.setattr(loader, "checkout", lambda: tmp_path)
    with pytest.raises(loader.NeedsCheckout, match="need a source checkout") as info:
        from explorer.tools.oracles import synthetic_beam_tree  # noqa: F401
    assert "\n" not in str(info.value)
    assert bench._reference_search() is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "need a source checkout" in err
    row = {
        "preset": "p",
        "status": "bundled",
        "tree_ms": 5.0,
        "tree_nodes": 99,
        "speedup": None,
        "reference_s": None,
        "batched_s": 0.2,
        "greedy_sent_per_s": 50.0,
        "beam5_sent_per_s": 20.0,
        "long_tokens": 30,
    }
    decoding = {"rows": [row], "sentences": 30, "reference_sentences": 1}
    text = "\n".join(bench._decoding_section(decoding))
    assert f"| p (bundled) | 5.00 | 99 | {bench.NEEDS_CHECKOUT} | 50.0 | 20.0 |" in text
