"""The two WSGI apps as callables uWSGI can mount by name (``wsgi.apps:upload``).

Configured by ``$HISPARC_DATASTORE_CONFIG``, like ``examples/*.wsgi``; this
is what ``hisparc-datastore serve`` mounts, so that it runs from an installed
package.
"""

from datastore import config

from . import status_app, wsgi_app

upload = wsgi_app.app(config.default_path())
status = status_app.app(config.default_path())
