"""The HiSPARC datastore.

``pip install .`` is the upload endpoint alone (the standard library and
prometheus_client),
``.[writer]`` adds the writer (numpy, PyTables), ``.[serve]`` is all one host
runs (both, and uWSGI), ``.[postgresql]`` the batch record in PostgreSQL for
several upload hosts (psycopg), ``.[test]`` adds the tests' and linters' tools.
"""

import pathlib

from setuptools import setup

WRITER = ['numpy', 'tables>=3.7']
SERVE = [*WRITER, 'pyuwsgi>=2.0.26']
POSTGRESQL = ['psycopg[binary]>=3.1']  # the batch record shared by several upload hosts

setup(
    name='hisparc-datastore',
    version='1.1.0',
    description='The HiSPARC datastore: station upload endpoint and raw-data HDF5 writer',
    long_description=pathlib.Path(__file__).with_name('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='GPL-3.0-or-later',
    packages=['datastore', 'datastore.cli', 'wsgi', 'writer'],
    python_requires='>=3.9',
    install_requires=['prometheus_client>=0.16'],
    extras_require={
        'writer': WRITER,
        'serve': SERVE,
        'postgresql': POSTGRESQL,
        'test': [*SERVE, *POSTGRESQL, 'pytest>=7', 'WebTest>=3', 'ruff>=0.8', 'mypy>=1.10'],
    },
    entry_points={
        'console_scripts': [
            'hisparc-datastore = datastore.cli:main',
            'hisparc-writer = writer.__main__:main',
        ],
        # the commands that need the writer's code, found by datastore.cli
        'hisparc_datastore.commands': ['audit = writer.audit', 'rebuild = writer.rebuild'],
    },
)
