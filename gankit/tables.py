"""Tables as markdown or LaTeX: the one place every table of the kit is formatted."""
from __future__ import annotations


from .core import GanError

__all__ = ['format_table']


def format_table(head: list[str], rows: list[list[str]], fmt: str = "markdown", align: str | None = None) -> str:
    """A table as markdown or LaTeX (booktabs; columns aligned by `align`, e.g. "llr", default the first
    left and the rest right; _ , * ± and × escaped): the one place every table of the kit is formatted."""
    if fmt == "markdown":
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                          *("| " + " | ".join(r) + " |" for r in rows)])
    if fmt != "latex":
        raise GanError(f"table format {fmt!r}: choose 'markdown' or 'latex'")
    esc = lambda t: (t.replace("_", r"\_").replace(",", "{,}").replace("*", r"$^*$")  # noqa: E731
                     .replace("±", r"$\pm$").replace("×", r"$\times$"))
    return "\n".join([r"\begin{tabular}{" + (align or "l" + "r" * (len(head) - 1)) + "}", r"\toprule",
                      " & ".join(map(esc, head)) + r" \\", r"\midrule",
                      *(" & ".join(map(esc, r)) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}"])
