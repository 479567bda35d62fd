# The monitoring endpoint (/hisparc/status) for uWSGI: JSON, or Prometheus text
# with ?format=prometheus. Reads the same config.ini as the upload endpoint.
import functools
import os

from wsgi import status_app

application = functools.partial(
    status_app.application,
    configfile=os.environ.get('HISPARC_DATASTORE_CONFIG', '/etc/hisparc/datastore.ini'))
