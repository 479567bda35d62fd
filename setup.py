from setuptools import setup

setup(
    name='hisparc-datastore',
    version='1.0.0',
    description='The HiSPARC datastore: station upload endpoint and raw-data HDF5 writer',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='GPL-3.0-or-later',
    packages=['datastore', 'wsgi', 'writer'],
    python_requires='>=3.9',
    # The endpoint needs only the standard library; the writer needs PyTables.
    install_requires=['numpy', 'tables>=3.7'],
    extras_require={
        'serve': ['pyuwsgi>=2.0.26'],
        'test': ['pytest>=7', 'WebTest>=3', 'pyuwsgi>=2.0.26'],
    },
    entry_points={
        'console_scripts': [
            'hisparc-datastore = datastore.cli:main',
            'hisparc-writer = writer.__main__:main',
        ],
    },
)
