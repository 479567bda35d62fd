# The monitoring endpoint (/hisparc/status) for uWSGI: JSON, or Prometheus text
# with ?format=prometheus. Reads the same config.ini as the upload endpoint.
from datastore import config
from wsgi import status_app

application = status_app.app(config.default_path())
