import os

import pytest

from datastore import config as config_mod
from tests.support import spec
from tests.support.endpoint import Endpoint


@pytest.fixture
def captures():
    """The real station captures beside the checkout (skipped where absent, failed under CI)."""
    return spec.shared('captures')


@pytest.fixture
def make_config(tmp_path):
    """Write a config.ini (plus station list) under tmp_path; return its path.

    Keyword arguments set [General] keys; ``writer_sleep`` sets [Writer] sleep.
    """

    def make(stations='501,Amsterdam,s3cret\n502,Utrecht,pa ss\n', writer_sleep=0.05, **general):
        station_list = tmp_path / 'station_list.csv'
        station_list.write_text(stations)
        values = {
            'log': str(tmp_path / 'hisparc.log'),
            'loglevel': 'debug',
            'station_list': str(station_list),
            'data_dir': str(tmp_path / 'datastore'),
        }
        values.update({k: str(v) for k, v in general.items()})
        text = '[General]\n' + ''.join(f'{k}={v}\n' for k, v in values.items())
        text += f'\n[Writer]\nsleep={writer_sleep}\n'
        path = tmp_path / 'config.ini'
        path.write_text(text)
        return str(path)

    return make


@pytest.fixture
def config(make_config):
    return config_mod.load(make_config())


@pytest.fixture
def endpoint(make_config):
    """An Endpoint factory; keyword arguments are [General] keys of its config."""

    def make(**general):
        return Endpoint(make_config(**general))

    return make


@pytest.fixture
def ep(endpoint):
    return endpoint()


@pytest.fixture(autouse=True)
def _metrics_folder_stays_in_this_process():
    """An endpoint in this process points prometheus_client at its folder; later processes choose theirs."""
    yield
    os.environ.pop('PROMETHEUS_MULTIPROC_DIR', None)
