"""uWSGI entry point of the upload endpoint.

    uwsgi --http-socket 127.0.0.1:8080 --processes 2 \
          --wsgi-file examples/application.wsgi \
          --env HISPARC_DATASTORE_CONFIG=/etc/hisparc/datastore.ini
"""
import functools
import os

from wsgi import wsgi_app

CONFIGFILE = os.environ.get('HISPARC_DATASTORE_CONFIG', '/etc/hisparc/datastore.ini')

application = functools.partial(wsgi_app.application, configfile=CONFIGFILE)
