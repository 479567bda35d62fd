# The monitoring endpoints for uWSGI, mounted at /hisparc: /hisparc/ready,
# /hisparc/health, /hisparc/status (HTML, JSON or Prometheus) and
# /hisparc/metrics; any other path goes to the upload endpoint. Reads the same
# config.ini as the upload endpoint.
from datastore import config
from wsgi import status_app

application = status_app.app(config.default_path())
