"""``python -m writer CONFIG [--once]`` and the ``hisparc-writer`` command."""
import argparse

from . import writer_app


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='hisparc-writer',
        description='Store the spooled station uploads in the HDF5 day files.')
    parser.add_argument('config', help='path of config.ini')
    parser.add_argument('--once', action='store_true',
                        help='drain what is queued, then exit')
    args = parser.parse_args(argv)
    writer_app.writer(args.config, once=args.once)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
