"""The HDF5 layout of the raw datastore, built from the event-type table.

This is the only place that maps the column type names of
``datastore.eventtypes`` to PyTables columns and numpy dtypes; storage code
asks here and has no per-type branches.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import tables

from datastore.eventtypes import EVENT_TYPES, Column, all_columns

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


def cluster_group(cluster: str) -> tuple[str, str]:
    return f'cluster_{cluster.lower()}', f'HiSPARC cluster {cluster} data'


def station_group(station_id: int) -> tuple[str, str]:
    return f'station_{station_id}', f'HiSPARC station {station_id} data'


def station_path(cluster: str, station_id: int) -> str:
    return f'{ROOT}/{cluster_group(cluster)[0]}/{station_group(station_id)[0]}'


def _pytables_column(column: Column, pos: int) -> tables.Col:
    shape = () if column.shape == 1 else (column.shape,)
    return PYTABLES_COLUMNS[column.type](dflt=column.default, shape=shape, pos=pos)


@functools.cache
def description(code: str) -> dict[str, Any]:
    """The PyTables description (dict of columns, ``pos`` = on-disk order)."""
    return {
        column.name: _pytables_column(column, pos)
        for pos, column in enumerate(all_columns(EVENT_TYPES[code]))
    }


@functools.cache
def dtype(code: str) -> np.dtype:
    """The numpy record dtype of the table's rows, in on-disk order."""
    return tables.Description(description(code))._v_dtype


@functools.cache
def numpy_dtype(type_name: str) -> np.dtype:
    """The numpy dtype that stores a column type (``time32`` -> int32)."""
    return PYTABLES_COLUMNS[type_name]().dtype
