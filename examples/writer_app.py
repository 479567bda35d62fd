"""Run the writer the way the deployed system starts it (seed interface)."""

from datastore import config
from writer import writer_app

writer_app.writer(config.default_path())
