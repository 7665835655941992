"""The README's speed figures are the benchmark report's: each number in its "Speed" section stands
in the generated summary (``docs/benchmarks_summary.md``, written by ``benchmarks/report.py``)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _speed_section() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("## Speed")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_figure_in_the_readme_speed_section_is_in_the_generated_summary():
    with open(os.path.join(ROOT, "docs", "benchmarks_summary.md"), encoding="utf-8") as f:
        summary = f.read()
    ratios = re.findall(r"\d+\.\d+(?:–\d+\.\d+)?×", _speed_section())
    assert len(ratios) >= 6
    missing = [r for r in ratios if r not in summary]
    assert missing == [], f"README figures not in docs/benchmarks_summary.md: {missing}"
