"""`attention-explorer bench --only X` replaces X's tables in BENCHMARKS.md and keeps the rest."""

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
