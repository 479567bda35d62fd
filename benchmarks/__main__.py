"""Run the benchmarks: ``python -m benchmarks [upload] [writer] [integrity] [shape]`` (default all)."""

import importlib
import sys

PARTS = ('upload', 'writer', 'integrity', 'shape')


def main(argv=None):
    parts = (argv if argv is not None else sys.argv[1:]) or PARTS
    for part in parts:
        if part not in PARTS:
            sys.exit(f'unknown benchmark {part!r}; choose from {", ".join(PARTS)}')
        print(f'== {part} ==', flush=True)
        importlib.import_module(f'benchmarks.{part}').main()


if __name__ == '__main__':
    main()
