# The monitoring endpoint (/hisparc/status) for uWSGI: JSON, or Prometheus text
# with ?format=prometheus. Reads the same config.ini as the upload endpoint.
import functools

from datastore import config
from wsgi import status_app

application = functools.partial(status_app.application, configfile=config.default_path())
