#!/usr/bin/env python3
"""Checks that the user guide cannot drift from code the test suite compiles.

  check_guide.py GUIDE.md EXAMPLES_DIR            check (meson test docs_guide_check)
  check_guide.py GUIDE.md EXAMPLES_DIR --print NAME   print region NAME, to paste

Every ```cpp block of GUIDE.md must equal the text of one region of the
EXAMPLES_DIR/*.cpp files: the lines between `// [guide:NAME]` and
`// [/guide:NAME]` (each on a line of its own), with their common indentation
removed. A region may be opened and closed several times in one file (its
pieces are joined, so lines between them stay out of the guide), regions may
nest (marker lines never belong to a region), and every region must appear
in the guide. Every guide_*.cpp of EXAMPLES_DIR must be listed in its
meson.build (so that it is compiled and run).
"""
import difflib
import re
import sys
from pathlib import Path

OPEN = re.compile(r"^\s*// \[guide:([A-Za-z0-9_]+)\]\s*$")
CLOSE = re.compile(r"^\s*// \[/guide:([A-Za-z0-9_]+)\]\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")


def dedent(lines):
    indents = [len(l) - len(l.lstrip(" ")) for l in lines if l.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(l[cut:] if l.strip() else "" for l in lines).strip("\n")


def read_regions(folder, errors):
    """{name: (text, file)} over every .cpp of folder."""
    pieces = {}  # name -> (file, [lines])
    for path in sorted(folder.glob("*.cpp")):
        open_regions = {}
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.name}:{number}"
            if m := OPEN.match(line):
                name = m.group(1)
                if name in open_regions:
                    errors.append(f"{where}: region {name} opened again before it was closed")
                if name in pieces and pieces[name][0] != path:
                    errors.append(f"{where}: region {name} is also in {pieces[name][0].name}")
                open_regions[name] = number
                pieces.setdefault(name, (path, []))
            elif m := CLOSE.match(line):
                if open_regions.pop(m.group(1), None) is None:
                    errors.append(f"{where}: region {m.group(1)} closed but not open")
            elif "[guide:" in line or "[/guide:" in line:
                errors.append(f"{where}: malformed marker (a marker is a line of its own: // [guide:NAME])")
            else:
                for name in open_regions:
                    pieces[name][1].append(line)
        for name, number in open_regions.items():
            errors.append(f"{path.name}:{number}: region {name} is never closed")
    return {name: (dedent(lines), path) for name, (path, lines) in pieces.items()}


def read_blocks(guide, errors):
    """[(line number, language, text)] of the fenced blocks of the guide."""
    blocks, current = [], None
    for number, line in enumerate(guide.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if current is None:
            if m:
                current = (number, m.group(1), [])
        elif m and not m.group(1):
            blocks.append((current[0], current[1], "\n".join(current[2]).strip("\n")))
            current = None
        else:
            current[2].append(line)
    if current is not None:
        errors.append(f"{guide.name}:{current[0]}: code block never closed")
    return blocks


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--print"):
        print(__doc__, file=sys.stderr)
        return 2
    guide, folder = Path(argv[1]), Path(argv[2])
    errors = []
    regions = read_regions(folder, errors)
    if len(argv) == 5:
        if argv[4] not in regions:
            print(f"no region {argv[4]} (regions: {', '.join(sorted(regions))})", file=sys.stderr)
            return 1
        print(regions[argv[4]][0])
        return 0

    by_text = {}
    for name, (text, path) in regions.items():
        by_text.setdefault(text, name)
    used = set()
    blocks = read_blocks(guide, errors)
    cpp_blocks = [b for b in blocks if b[1] in ("cpp", "c++")]
    if not cpp_blocks:
        errors.append(f"{guide.name}: no ```cpp block")
    for number, _, text in cpp_blocks:
        if text in by_text:
            used.update(n for n, (t, _) in regions.items() if t == text)
            continue
        # Point at the region the block most resembles, with the difference.
        best = max(regions.items(), key=lambda item: difflib.SequenceMatcher(None, text, item[1][0]).ratio(),
                   default=None)
        message = f"{guide.name}:{number}: this ```cpp block is not the text of any region of {folder}/*.cpp"
        if best:
            name, (region_text, path) = best
            diff = difflib.unified_diff(region_text.splitlines(), text.splitlines(),
                                        f"{path.name} [guide:{name}]", f"{guide.name}:{number}", lineterm="")
            message += f"; closest is [guide:{name}] of {path.name}:\n" + "\n".join(diff)
            message += f"\n(print the region with: {Path(argv[0]).name} {argv[1]} {argv[2]} --print {name})"
        errors.append(message)
    for name, (_, path) in sorted(regions.items()):
        if name not in used:
            errors.append(f"{path.name}: region [guide:{name}] is not shown in {guide.name}")

    meson = folder / "meson.build"
    listed = meson.read_text() if meson.exists() else ""
    for path in sorted(folder.glob("guide_*.cpp")):
        stem = path.stem[len("guide_"):]
        if f"'{stem}'" not in listed:
            errors.append(f"{path.name} is not listed in {meson} (it would be neither compiled nor run)")

    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"{guide.name}: {len(cpp_blocks)} cpp blocks match {len(regions)} regions of {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
