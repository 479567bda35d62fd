"""Run the writer the way the deployed system starts it (seed interface)."""
import os

from writer import writer_app

CONFIGFILE = os.environ.get('HISPARC_DATASTORE_CONFIG', '/etc/hisparc/datastore.ini')

writer_app.writer(CONFIGFILE)
