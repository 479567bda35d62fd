"""uWSGI entry point of the upload endpoint.

    uwsgi --http-socket 127.0.0.1:8080 --processes 2 --need-app \
          --wsgi-file examples/application.wsgi \
          --env HISPARC_DATASTORE_CONFIG=/etc/hisparc/datastore.ini

A configuration that cannot be used fails the load, and ``need-app`` stops
uWSGI with the reason.
"""
from datastore import config
from wsgi import wsgi_app

application = wsgi_app.app(config.default_path())
