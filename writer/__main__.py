"""``python -m writer CONFIG [--once]`` and the ``hisparc-writer`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import writer_app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='hisparc-writer', description='Store the spooled station uploads in the HDF5 day files.'
    )
    parser.add_argument('config', help='path of config.ini')
    parser.add_argument('--once', action='store_true', help='drain what is queued, then exit')
    args = parser.parse_args(argv)
    writer_app.writer(args.config, once=args.once)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
