#!/usr/bin/env python3
"""Doxygen input filter: reads petal's plain // header comments as documentation.

petal's headers are commented with //, which Doxygen ignores. This filter,
run by Doxygen on each header (INPUT_FILTER in docs/Doxyfile.in), rewrites
the text Doxygen parses, never the sources:

- the comment block at the top of a file becomes that file's description
  (/// \\file);
- a comment line of its own becomes /// (documents the declaration below it),
  except separators such as // ---- reductions ---- and comments inside
  function bodies in the header; an indented paragraph after an empty //
  line (a formula, an example) becomes a Markdown code block;
- a comment after a declaration or enumerator (`int x;  // what x is`)
  becomes ///< (documents that member).

Lines keep their numbers, so Doxygen's warnings point at the real lines.

  doxygen_filter.py FILE   (writes the filtered text to stdout)
"""
import re
import sys

OWN_LINE = re.compile(r'^(\s*)//(?![/!<])(.*)$')
SEPARATOR = re.compile(r'^\s*//\s*-{3,}.*-{3,}\s*$')
# `code;  // text` or `code,  // text` (not inside a string: the code part
# must hold an even number of double quotes).
TRAILING = re.compile(r'^([^"]*(?:"[^"]*"[^"]*)*[;,])(\s+)//(?![/!<])(.*)$')


def filtered(lines):
    out = []
    at_top = True  # still inside the file's leading comment block
    depth = 0      # brace depth inside function bodies (approximate)
    state = {'prev': None}  # the previous converted comment line: 'blank', 'code' or 'text'

    def doc_line(line):
        """`// text` -> `/// text`; an indented paragraph (`//   SGD: ...` after an
        empty `//`) becomes a Markdown code block, so formulas keep their lines."""
        indent, text = OWN_LINE.match(line).groups()
        if not text.strip():
            kind = 'blank'
        elif text.startswith('   ') and state['prev'] in ('blank', 'code'):
            kind, text = 'code', '    ' + text
        else:
            kind = 'text'
        state['prev'] = kind
        return f'{indent}///{text}'

    for line in lines:
        stripped = line.strip()
        if not OWN_LINE.match(line):
            state['prev'] = None
        if at_top:
            if stripped.startswith('//'):
                out.append(doc_line(line) if OWN_LINE.match(line) else line)
                continue
            at_top = False
            if out:  # \file at the end of the block's last line keeps the line count
                out[-1] += ' \\file'
        if SEPARATOR.match(line) or depth > 0:
            out.append(line)
        elif OWN_LINE.match(line):
            out.append(doc_line(line))
        else:
            out.append(TRAILING.sub(r'\1\2///<\3', line))
        depth = body_depth(line, depth)
    return out


def body_depth(line, depth):
    """Tracks whether the next line is inside an inline function's body.

    A body opens at a `{` that follows `)` (or `) const`, `noexcept`, ...) on
    the same line; class, namespace and enum braces do not count."""
    code = line.split('//', 1)[0]
    if depth == 0:
        match = re.search(r'\)[\w\s&>-]*\{', code)
        if not match:
            return 0
        code = code[match.end() - 1:]
    depth += code.count('{') - code.count('}')
    return max(depth, 0)


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        lines = f.read().split('\n')
    sys.stdout.write('\n'.join(filtered(lines)))


if __name__ == '__main__':
    main()
