"""The HDF5 layout of the raw datastore, built from the event-type table.

This is the only place that maps the column type names of
``datastore.eventtypes`` to PyTables columns and numpy dtypes; storage code
asks here and has no per-type branches.
"""
import functools

import tables

from datastore.eventtypes import EVENT_TYPES, all_columns

# column type name -> PyTables column class
PYTABLES_COLUMNS = {
    'bool': tables.BoolCol,
    'uint8': tables.UInt8Col,
    'uint16': tables.UInt16Col,
    'uint32': tables.UInt32Col,
    'uint64': tables.UInt64Col,
    'int16': tables.Int16Col,
    'int32': tables.Int32Col,
    'float32': tables.Float32Col,
    'float64': tables.Float64Col,
    'time32': tables.Time32Col,
}

ROOT = '/hisparc'
ROOT_TITLE = 'HiSPARC data'
BLOBS = 'blobs'
BLOBS_TITLE = 'HiSPARC binary data'


def day_file(data_dir, year, month, day):
    """``data_dir/{year}/{month}/{year}_{month}_{day}.h5``, no zero padding."""
    return f'{data_dir}/{year}/{month}/{year}_{month}_{day}.h5'


def cluster_group(cluster):
    return f'cluster_{cluster.lower()}', f'HiSPARC cluster {cluster} data'


def station_group(station_id):
    return f'station_{station_id}', f'HiSPARC station {station_id} data'


def station_path(cluster, station_id):
    return f'{ROOT}/{cluster_group(cluster)[0]}/{station_group(station_id)[0]}'


def _pytables_column(column, pos):
    shape = () if column.shape == 1 else (column.shape,)
    return PYTABLES_COLUMNS[column.type](dflt=column.default, shape=shape, pos=pos)


@functools.lru_cache(maxsize=None)
def description(code):
    """The PyTables description (dict of columns, ``pos`` = on-disk order)."""
    return {column.name: _pytables_column(column, pos)
            for pos, column in enumerate(all_columns(EVENT_TYPES[code]))}


@functools.lru_cache(maxsize=None)
def dtype(code):
    """The numpy record dtype of the table's rows, in on-disk order."""
    return tables.Description(description(code))._v_dtype


@functools.lru_cache(maxsize=None)
def numpy_dtype(type_name):
    """The numpy dtype that stores a column type (``time32`` -> int32)."""
    return PYTABLES_COLUMNS[type_name]().dtype
