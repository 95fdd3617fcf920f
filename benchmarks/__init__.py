"""Benchmarks and comparisons: measurements, not tests. Their results are in benchmarks/results/."""

from pathlib import Path


def keep_sorted_row(out: Path, header: list[str], key: str, row: str) -> None:
    """Write ``out`` as ``header`` and its rows, sorted, with ``row`` in place of any earlier row
    that starts with ``key``: a results file whose rows are kept across runs."""
    kept = [line for line in out.read_text().splitlines()[len(header):]
            if line.startswith("| ") and not line.startswith(key)] if out.exists() else []
    out.write_text("\n".join([*header, *sorted(kept + [row])]) + "\n")
