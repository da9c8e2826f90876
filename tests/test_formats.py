"""profiler.formats: the table's text formats, on rows written by hand."""
from profiler.formats import to_csv, to_latex


def _row(model, precision, bop_nonq_g=54090.67696):
    return dict(model=model, layers=16, dim=144, heads=4, precision=precision,
                storage_mb=133.584192, flop_g=19.25084442, bop_nonq_g=bop_nonq_g,
                bop_bq_g=0.0, est_time_s=0.001458862892)


def test_latex_rules_off_the_quantized_rows_whatever_their_bits():
    """A rule between the float rows and the first quantized one, W2A2 as W1A1 (it looked
    for 'W1A1' in the precision, so a W2A2 row ran on under the float ones)."""
    def rules_in_body(rows):
        table = "\n".join(to_latex(rows).splitlines()[1:])   # past the booktabs comment
        return table.split(r"\midrule", 1)[1].count(r"\midrule")   # past the header's

    for precision in ("FP32-W1A1", "FP32-W2A2", "FP16-W1A4"):
        assert rules_in_body([_row("conformer-s", "FP32"),
                              _row("conformer-s", precision)]) == 1, precision
    assert rules_in_body([_row("conformer-s", "FP32"), _row("vanilla", "FP16")]) == 0


def test_csv_keeps_the_digits_the_markdown_shows_and_more():
    text = to_csv([_row("vanilla", "FP32")])
    assert "54090.67696" in text and "0.001458862892" in text and "e+" not in text
    assert "1234567.891" in to_csv([_row("vanilla", "FP32", bop_nonq_g=1234567.891)])
