"""Run the benchmarks: ``python -m benchmarks [writer] [upload] [integrity] [shape]`` (default all).

The two that compare against a reference come first, before the others fill
and delete gigabytes (see ``quiet_disk``).
"""

import importlib
import sys

PARTS = ('writer', 'upload', 'integrity', 'shape')


def main(argv=None):
    parts = (argv if argv is not None else sys.argv[1:]) or PARTS
    for part in parts:
        if part not in PARTS:
            sys.exit(f'unknown benchmark {part!r}; choose from {", ".join(PARTS)}')
        print(f'== {part} ==', flush=True)
        importlib.import_module(f'benchmarks.{part}').main()


if __name__ == '__main__':
    main()
