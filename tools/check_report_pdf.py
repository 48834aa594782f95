"""Check the built report PDF as a reader meets it: pages (main text and appendices), the words of its text layer
printed under a size limit (figures' text included), and words that describe how the work was made rather than
the models. Needs PyMuPDF (pip install pymupdf), which the kit itself does not.

    python tools/check_report_pdf.py ["report/Deep Learning Report 4.pdf"] [--min-pt 6.5]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PROCESS_WORDS = ("session", "issue", "ticket", "workplace", "stretches", "beside other jobs", "not finished yet",
                 "still running", "status update")   # how the work was made, not what the models do


def check(pdf: Path, min_pt: float) -> dict:
    """Pages in all, the page where the appendices start (the first page whose text starts with "A "), the words
    printed under min_pt points with their page, and the process words found with their page."""
    import pymupdf
    doc = pymupdf.open(pdf)
    small, process, appendix = [], [], None
    for number, page in enumerate(doc, start=1):
        text = page.get_text()
        if appendix is None and re.search(r"^A\s*\n?Where each item", text, re.M):
            appendix = number
        for word in PROCESS_WORDS:
            if word in text.lower():
                process.append((number, word))
        for block in page.get_text("dict")["blocks"]:
            for line in block.get("lines", []):
                for span in line["spans"]:
                    if span["size"] < min_pt:
                        small += [(number, round(span["size"], 1), w) for w in span["text"].split()]
    return {"pages": len(doc), "appendix_from": appendix, "small": small, "process": process}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", nargs="?", default="report/Deep Learning Report 4.pdf")
    parser.add_argument("--min-pt", type=float, default=6.5)
    args = parser.parse_args()
    try:
        result = check(Path(args.pdf), args.min_pt)
    except ImportError:
        print("error: this check needs PyMuPDF: pip install pymupdf", file=sys.stderr)
        return 2
    appendix = result["appendix_from"]
    main_pages = (appendix - 1) if appendix else result["pages"]
    print(f"{result['pages']} pages: main text and references 1-{main_pages}, appendices "
          f"{f'{appendix}-' + str(result['pages']) if appendix else 'none'} ({result['pages'] - main_pages} pages)")
    print(f"{len(result['small'])} words under {args.min_pt} pt" +
          (": " + ", ".join(f"p.{p} {w!r} ({s} pt)" for p, s, w in result["small"][:20]) if result["small"] else ""))
    print(f"process words: {', '.join(f'p.{p} {w!r}' for p, w in result['process']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
