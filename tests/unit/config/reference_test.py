"""The README's configuration table is the one generated from the settings model."""

from __future__ import annotations

from pathlib import Path

from guardian.config.reference import reference_table

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_reference_matches_settings_model() -> None:
    """Every setting is documented in the README exactly as the model describes it."""
    text = README.read_text()
    start = text.index("<!-- config-reference:start -->\n") + len(
        "<!-- config-reference:start -->\n"
    )
    end = text.index("<!-- config-reference:end -->")
    assert text[start:end] == reference_table(), "run `guardian config reference` into README"
