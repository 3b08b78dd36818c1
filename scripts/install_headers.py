#!/usr/bin/env python3
"""Installs petal's public headers; `meson install` runs it (meson.build).

The sources include each other relative to the source root ("core/tensor.hpp").
Installed, the headers live under INCLUDEDIR/petal/, and users put only
INCLUDEDIR on their include path: INCLUDEDIR/petal would add folders named
core/, data/, nn/ to every program's path. So each installed copy has its
quoted includes written as <petal/core/tensor.hpp>, and the umbrella header
goes to INCLUDEDIR/petal.hpp (`#include <petal.hpp>`). A quoted include of a
header that is not installed is an error: a public header must not need an
internal one.

  install_headers.py INCLUDEDIR UMBRELLA --into FOLDER HEADER... [--into FOLDER HEADER...]...

FOLDER is the header's folder in the source tree (core, kernels/cpu, ...),
HEADER its source path. meson's environment gives the prefix and DESTDIR.
"""
import os
import re
import sys

QUOTED_INCLUDE = re.compile(r'^(\s*#\s*include\s*)"([^"]+)"', re.MULTILINE)


def parse_arguments(argv):
    includedir, umbrella, rest = argv[0], argv[1], argv[2:]
    headers = {}  # installed name under petal/ ("core/tensor.hpp") -> source path
    folder = None
    arguments = iter(rest)
    for arg in arguments:
        if arg == '--into':
            folder = next(arguments)
        elif folder is None:
            sys.exit(f'install_headers.py: {arg} comes before any --into FOLDER')
        else:
            headers[f'{folder}/{os.path.basename(arg)}'] = arg
    return includedir, umbrella, headers


def install_root(includedir):
    if os.path.isabs(includedir):
        return os.environ.get('DESTDIR', '') + includedir
    return os.path.join(os.environ['MESON_INSTALL_DESTDIR_PREFIX'], includedir)


def rewritten(source, installed_names):
    with open(source, encoding='utf-8') as f:
        text = f.read()

    def to_angle_brackets(match):
        name = match.group(2)
        if name not in installed_names:
            sys.exit(f'install_headers.py: {source} includes "{name}", which is not installed '
                     '(list it with the public headers, or keep it out of public headers)')
        return f'{match.group(1)}<petal/{name}>'

    return QUOTED_INCLUDE.sub(to_angle_brackets, text)


def main():
    includedir, umbrella, headers = parse_arguments(sys.argv[1:])
    root = install_root(includedir)
    targets = [(umbrella, os.path.join(root, 'petal.hpp'))]
    targets += [(source, os.path.join(root, 'petal', name)) for name, source in sorted(headers.items())]
    dry_run = bool(os.environ.get('MESON_INSTALL_DRY_RUN'))
    quiet = bool(os.environ.get('MESON_INSTALL_QUIET'))
    for source, target in targets:
        text = rewritten(source, headers)
        if not quiet:
            print(f'Installing {source} to {os.path.dirname(target)} (includes as <petal/...>)')
        if dry_run:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, 'w', encoding='utf-8') as f:
            f.write(text)
        os.chmod(target, 0o644)


if __name__ == '__main__':
    main()
