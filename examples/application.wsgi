"""uWSGI entry point of the upload endpoint.

    uwsgi --http-socket 127.0.0.1:8080 --processes 2 \
          --wsgi-file examples/application.wsgi \
          --env HISPARC_DATASTORE_CONFIG=/etc/hisparc/datastore.ini
"""
import functools

from datastore import config
from wsgi import wsgi_app

application = functools.partial(wsgi_app.application, configfile=config.default_path())
