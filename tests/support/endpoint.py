"""The upload endpoint in this process (WebTest), and what it left on disk and in its log."""

import functools
import pathlib

import webtest

from datastore import datadir, py2pickle, spoolfile
from tests.support.uwsgi_server import upload_body
from wsgi import wsgi_app

PASSWORD = 's3cret'  # station 501's, in make_config's station list


class Endpoint:
    """The app for one config, and what it left on disk and in its log."""

    def __init__(self, configfile):
        self.configfile = configfile
        self.app = webtest.TestApp(
            functools.partial(wsgi_app.application, configfile=configfile),
            extra_environ={'REMOTE_ADDR': '127.0.0.1'},
        )
        self.data_dir = pathlib.Path(configfile).parent / 'datastore'
        self.log_path = pathlib.Path(configfile).parent / 'hisparc.log-wsgi'

    def post(self, body, path='/hisparc/upload', **kwargs):
        response = self.app.post(path, body, content_type='application/x-www-form-urlencoded', **kwargs)
        assert response.status_int == 200 and response.content_type == 'text/plain'
        return response.text

    def upload(self, events, station=501, password=PASSWORD, **kwargs):
        pickled = events if isinstance(events, bytes) else py2pickle.dumps(events)
        return self.post(upload_body(station, password, pickled, **kwargs))

    def files(self, folder):
        path = self.data_dir / folder
        return sorted(path.iterdir()) if path.is_dir() else []

    def spooled(self, folder=datadir.INCOMING):
        return [spoolfile.load(path) for path in self.files(folder)]

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ''
