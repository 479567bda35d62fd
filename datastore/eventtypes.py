"""The event types of the raw datastore: one table of data, read by all code.

Transcribed from the HDF5 layout that publicdb and SAPPHIRE read (see the
README). For each event type: its upload code, table name and title, whether
it has the extended time columns, and its columns in on-disk order. Every
table starts with ``event_id`` and ``timestamp``; ``extended_time`` tables add
``nanoseconds`` and ``ext_timestamp``. A column sets itself from the upload
code ``upload``; an array column (``shape`` > 1) from ``upload`` + ``1`` …
``upload`` + ``shape``. A ``blob`` column holds the index of its value in the
station's ``blobs`` array: ``'base64'`` values are stored base64-decoded (the
traces), ``'text'`` values as their text in ISO-8859-1.

This module is pure data and imports nothing heavy: the endpoint, the writer
and the tools all read it.
"""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    type: str  # a column type name of writer.layout
    default: int | float | bool
    upload: str | None = None  # the upload code (the stem of an array column's codes)
    shape: int = 1
    blob: str | bool = False  # 'base64' or 'text': the column holds a blob index


class EventType(NamedTuple):
    code: str
    table: str
    title: str
    extended_time: bool
    columns: tuple[Column, ...]


TIME_COLUMNS = (
    Column('event_id', 'uint32', 0),
    Column('timestamp', 'time32', 0),
)
EXTENDED_TIME_COLUMNS = (
    Column('nanoseconds', 'uint32', 0),
    Column('ext_timestamp', 'uint64', 0),
)

_EVENT_TYPES = (
    EventType(
        'CIC',
        'events',
        'HiSPARC event data',
        extended_time=True,
        columns=(
            Column('data_reduction', 'bool', False, 'RED'),
            Column('trigger_pattern', 'uint32', 0, 'TRIGPATTERN'),
            Column('baseline', 'int16', -1, 'BL', shape=4),
            Column('std_dev', 'int16', -1, 'STDDEV', shape=4),
            Column('n_peaks', 'int16', -1, 'NP', shape=4),
            Column('pulseheights', 'int16', -1, 'PH', shape=4),
            Column('integrals', 'int32', -1, 'IN', shape=4),
            Column('traces', 'int32', -1, 'TR', shape=4, blob='base64'),
            Column('event_rate', 'float32', 0.0, 'EVENTRATE'),
        ),
    ),
    EventType(
        'ERR',
        'errors',
        'HiSPARC error messages',
        extended_time=False,
        columns=(Column('messages', 'int32', -1, 'ERRMSG', blob='text'),),
    ),
    EventType(
        'CFG',
        'config',
        'HiSPARC configuration messages',
        extended_time=False,
        columns=(
            Column('gps_latitude', 'float64', 0.0, 'CFG_GPS_LAT'),
            Column('gps_longitude', 'float64', 0.0, 'CFG_GPS_LONG'),
            Column('gps_altitude', 'float64', 0.0, 'CFG_GPS_ALT'),
            Column('mas_version', 'int32', -1, 'CFG_MAS_VERSION', blob='text'),
            Column('slv_version', 'int32', -1, 'CFG_SLV_VERSION', blob='text'),
            Column('trig_low_signals', 'uint32', 0, 'CFG_TRIGLOWSIG'),
            Column('trig_high_signals', 'uint32', 0, 'CFG_TRIGHIGHSIG'),
            Column('trig_external', 'uint32', 0, 'CFG_TRIGEXT'),
            Column('trig_and_or', 'bool', False, 'CFG_TRIGANDOR'),
            Column('precoinctime', 'float64', 0.0, 'CFG_PRECTIME'),
            Column('coinctime', 'float64', 0.0, 'CFG_CTIME'),
            Column('postcoinctime', 'float64', 0.0, 'CFG_POSTCTIME'),
            Column('detnum', 'uint16', 0, 'CFG_DETNUM'),
            Column('password', 'int32', -1, 'CFG_PASSWORD', blob='text'),
            Column('spare_bytes', 'uint8', 0, 'CFG_SPAREBYTES'),
            Column('use_filter', 'bool', False, 'CFG_USEFILTER'),
            Column('use_filter_threshold', 'bool', False, 'CFG_USEFILTTHRES'),
            Column('reduce_data', 'bool', False, 'CFG_REDUCE'),
            Column('buffer', 'int32', -1, 'CFG_BUFFER', blob='text'),
            Column('startmode', 'bool', False, 'CFG_STARTMODE'),
            Column('delay_screen', 'float64', 0.0, 'CFG_DELAYSCREEN'),
            Column('delay_check', 'float64', 0.0, 'CFG_DELAYCHECK'),
            Column('delay_error', 'float64', 0.0, 'CFG_DELAYERROR'),
            Column('mas_ch1_thres_low', 'float64', 0.0, 'CFG_MAS_CH1THRLOW'),
            Column('mas_ch1_thres_high', 'float64', 0.0, 'CFG_MAS_CH1THRHIGH'),
            Column('mas_ch2_thres_low', 'float64', 0.0, 'CFG_MAS_CH2THRLOW'),
            Column('mas_ch2_thres_high', 'float64', 0.0, 'CFG_MAS_CH2THRHIGH'),
            Column('mas_ch1_inttime', 'float64', 0.0, 'CFG_MAS_CH1INTTIME'),
            Column('mas_ch2_inttime', 'float64', 0.0, 'CFG_MAS_CH2INTTIME'),
            Column('mas_ch1_voltage', 'float64', 0.0, 'CFG_MAS_CH1VOLT'),
            Column('mas_ch2_voltage', 'float64', 0.0, 'CFG_MAS_CH2VOLT'),
            Column('mas_ch1_current', 'float64', 0.0, 'CFG_MAS_CH1CURR'),
            Column('mas_ch2_current', 'float64', 0.0, 'CFG_MAS_CH2CURR'),
            Column('mas_comp_thres_low', 'float64', 0.0, 'CFG_MAS_COMPTHRLOW'),
            Column('mas_comp_thres_high', 'float64', 0.0, 'CFG_MAS_COMPTHRHIGH'),
            Column('mas_max_voltage', 'float64', 0.0, 'CFG_MAS_MAXVOLT'),
            Column('mas_reset', 'bool', False, 'CFG_MAS_RESET'),
            Column('mas_ch1_gain_pos', 'uint8', 0, 'CFG_MAS_CH1GAINPOS'),
            Column('mas_ch1_gain_neg', 'uint8', 0, 'CFG_MAS_CH1GAINNEG'),
            Column('mas_ch2_gain_pos', 'uint8', 0, 'CFG_MAS_CH2GAINPOS'),
            Column('mas_ch2_gain_neg', 'uint8', 0, 'CFG_MAS_CH2GAINNEG'),
            Column('mas_ch1_offset_pos', 'uint8', 0, 'CFG_MAS_CH1OFFPOS'),
            Column('mas_ch1_offset_neg', 'uint8', 0, 'CFG_MAS_CH1OFFNEG'),
            Column('mas_ch2_offset_pos', 'uint8', 0, 'CFG_MAS_CH2OFFPOS'),
            Column('mas_ch2_offset_neg', 'uint8', 0, 'CFG_MAS_CH2OFFNEG'),
            Column('mas_common_offset', 'uint8', 0, 'CFG_MAS_COMMOFF'),
            Column('mas_internal_voltage', 'uint8', 0, 'CFG_MAS_INTVOLTAGE'),
            Column('mas_ch1_adc_gain', 'float64', 0.0, 'CFG_MAS_CH1ADCGAIN'),
            Column('mas_ch1_adc_offset', 'float64', 0.0, 'CFG_MAS_CH1ADCOFF'),
            Column('mas_ch2_adc_gain', 'float64', 0.0, 'CFG_MAS_CH2ADCGAIN'),
            Column('mas_ch2_adc_offset', 'float64', 0.0, 'CFG_MAS_CH2ADCOFF'),
            Column('mas_ch1_comp_gain', 'float64', 0.0, 'CFG_MAS_CH1COMPGAIN'),
            Column('mas_ch1_comp_offset', 'float64', 0.0, 'CFG_MAS_CH1COMPOFF'),
            Column('mas_ch2_comp_gain', 'float64', 0.0, 'CFG_MAS_CH2COMPGAIN'),
            Column('mas_ch2_comp_offset', 'float64', 0.0, 'CFG_MAS_CH2COMPOFF'),
            Column('slv_ch1_thres_low', 'float64', 0.0, 'CFG_SLV_CH1THRLOW'),
            Column('slv_ch1_thres_high', 'float64', 0.0, 'CFG_SLV_CH1THRHIGH'),
            Column('slv_ch2_thres_low', 'float64', 0.0, 'CFG_SLV_CH2THRLOW'),
            Column('slv_ch2_thres_high', 'float64', 0.0, 'CFG_SLV_CH2THRHIGH'),
            Column('slv_ch1_inttime', 'float64', 0.0, 'CFG_SLV_CH1INTTIME'),
            Column('slv_ch2_inttime', 'float64', 0.0, 'CFG_SLV_CH2INTTIME'),
            Column('slv_ch1_voltage', 'float64', 0.0, 'CFG_SLV_CH1VOLT'),
            Column('slv_ch2_voltage', 'float64', 0.0, 'CFG_SLV_CH2VOLT'),
            Column('slv_ch1_current', 'float64', 0.0, 'CFG_SLV_CH1CURR'),
            Column('slv_ch2_current', 'float64', 0.0, 'CFG_SLV_CH2CURR'),
            Column('slv_comp_thres_low', 'float64', 0.0, 'CFG_SLV_COMPTHRLOW'),
            Column('slv_comp_thres_high', 'float64', 0.0, 'CFG_SLV_COMPTHRHIGH'),
            Column('slv_max_voltage', 'float64', 0.0, 'CFG_SLV_MAXVOLT'),
            Column('slv_reset', 'bool', False, 'CFG_SLV_RESET'),
            Column('slv_ch1_gain_pos', 'uint8', 0, 'CFG_SLV_CH1GAINPOS'),
            Column('slv_ch1_gain_neg', 'uint8', 0, 'CFG_SLV_CH1GAINNEG'),
            Column('slv_ch2_gain_pos', 'uint8', 0, 'CFG_SLV_CH2GAINPOS'),
            Column('slv_ch2_gain_neg', 'uint8', 0, 'CFG_SLV_CH2GAINNEG'),
            Column('slv_ch1_offset_pos', 'uint8', 0, 'CFG_SLV_CH1OFFPOS'),
            Column('slv_ch1_offset_neg', 'uint8', 0, 'CFG_SLV_CH1OFFNEG'),
            Column('slv_ch2_offset_pos', 'uint8', 0, 'CFG_SLV_CH2OFFPOS'),
            Column('slv_ch2_offset_neg', 'uint8', 0, 'CFG_SLV_CH2OFFNEG'),
            Column('slv_common_offset', 'uint8', 0, 'CFG_SLV_COMMOFF'),
            Column('slv_internal_voltage', 'uint8', 0, 'CFG_SLV_INTVOLTAGE'),
            Column('slv_ch1_adc_gain', 'float64', 0.0, 'CFG_SLV_CH1ADCGAIN'),
            Column('slv_ch1_adc_offset', 'float64', 0.0, 'CFG_SLV_CH1ADCOFF'),
            Column('slv_ch2_adc_gain', 'float64', 0.0, 'CFG_SLV_CH2ADCGAIN'),
            Column('slv_ch2_adc_offset', 'float64', 0.0, 'CFG_SLV_CH2ADCOFF'),
            Column('slv_ch1_comp_gain', 'float64', 0.0, 'CFG_SLV_CH1COMPGAIN'),
            Column('slv_ch1_comp_offset', 'float64', 0.0, 'CFG_SLV_CH1COMPOFF'),
            Column('slv_ch2_comp_gain', 'float64', 0.0, 'CFG_SLV_CH2COMPGAIN'),
            Column('slv_ch2_comp_offset', 'float64', 0.0, 'CFG_SLV_CH2COMPOFF'),
        ),
    ),
    EventType(
        'CMP',
        'comparator',
        'HiSPARC comparator messages',
        extended_time=True,
        columns=(
            Column('device', 'uint8', 0, 'CMP_DEVICE'),
            Column('comparator', 'uint8', 0, 'CMP_COMPARATOR'),
            Column('count', 'uint16', 0, 'CMP_COUNT'),
        ),
    ),
    EventType(
        'SIN',
        'singles',
        'HiSPARC single messages',
        extended_time=False,
        columns=(
            Column('mas_ch1_low', 'int32', -1, 'MAS_CH1_LOW'),
            Column('mas_ch1_high', 'int32', -1, 'MAS_CH1_HIGH'),
            Column('mas_ch2_low', 'int32', -1, 'MAS_CH2_LOW'),
            Column('mas_ch2_high', 'int32', -1, 'MAS_CH2_HIGH'),
            Column('slv_ch1_low', 'int32', -1, 'SLV_CH1_LOW'),
            Column('slv_ch1_high', 'int32', -1, 'SLV_CH1_HIGH'),
            Column('slv_ch2_low', 'int32', -1, 'SLV_CH2_LOW'),
            Column('slv_ch2_high', 'int32', -1, 'SLV_CH2_HIGH'),
        ),
    ),
    EventType(
        'SAT',
        'satellites',
        'HiSPARC satellite messages',
        extended_time=False,
        columns=(
            Column('min_n', 'uint16', 0, 'MIN_N'),
            Column('mean_n', 'float32', 0.0, 'MEAN_N'),
            Column('max_n', 'uint16', 0, 'MAX_N'),
            Column('min_signal', 'uint16', 0, 'MIN_SIGNAL'),
            Column('mean_signal', 'float32', 0.0, 'MEAN_SIGNAL'),
            Column('max_signal', 'uint16', 0, 'MAX_SIGNAL'),
        ),
    ),
    EventType(
        'WTR',
        'weather',
        'HiSPARC weather data',
        extended_time=False,
        columns=(
            Column('temp_inside', 'float32', 0.0, 'WTR_TEMP_INSIDE'),
            Column('temp_outside', 'float32', 0.0, 'WTR_TEMP_OUTSIDE'),
            Column('humidity_inside', 'int16', 0, 'WTR_HUMIDITY_INSIDE'),
            Column('humidity_outside', 'int16', 0, 'WTR_HUMIDITY_OUTSIDE'),
            Column('barometer', 'float32', 0.0, 'WTR_BAROMETER'),
            Column('wind_dir', 'int16', 0, 'WTR_WIND_DIR'),
            Column('wind_speed', 'int16', 0, 'WTR_WIND_SPEED'),
            Column('solar_rad', 'int16', 0, 'WTR_SOLAR_RAD'),
            Column('uv', 'int16', 0, 'WTR_UV'),
            Column('evapotranspiration', 'float32', 0.0, 'WTR_ET'),
            Column('rain_rate', 'float32', 0.0, 'WTR_RAIN_RATE'),
            Column('heat_index', 'int16', 0, 'WTR_HEAT_INDEX'),
            Column('dew_point', 'float32', 0.0, 'WTR_DEW_POINT'),
            Column('wind_chill', 'float32', 0.0, 'WTR_WIND_CHILL'),
        ),
    ),
    EventType(
        'WER',
        'weather_errors',
        'HiSPARC weather error messages',
        extended_time=False,
        columns=(Column('messages', 'int32', -1, 'WER_ERRMSG', blob='text'),),
    ),
    EventType(
        'WCG',
        'weather_config',
        'HiSPARC weather configuration messages',
        extended_time=False,
        columns=(
            Column('com_port', 'uint8', 0, 'WCG_COM_PORT'),
            Column('baud_rate', 'int16', 0, 'WCG_BAUD_RATE'),
            Column('station_id', 'uint32', 0, 'WCG_STATION_ID'),
            Column('database_name', 'int32', -1, 'WCG_DATABASE_NAME', blob='text'),
            Column('help_url', 'int32', -1, 'WCG_HELP_URL', blob='text'),
            Column('daq_mode', 'bool', False, 'WCG_DAQ_MODE'),
            Column('latitude', 'float64', 0.0, 'WCG_LATITUDE'),
            Column('longitude', 'float64', 0.0, 'WCG_LONGITUDE'),
            Column('altitude', 'float64', 0.0, 'WCG_ALTITUDE'),
            Column('temperature_inside', 'bool', False, 'WCG_TEMPERATURE_INSIDE'),
            Column('temperature_outside', 'bool', False, 'WCG_TEMPERATURE_OUTSIDE'),
            Column('humidity_inside', 'bool', False, 'WCG_HUMIDITY_INSIDE'),
            Column('humidity_outside', 'bool', False, 'WCG_HUMIDITY_OUTSIDE'),
            Column('barometer', 'bool', False, 'WCG_BAROMETER'),
            Column('wind_direction', 'bool', False, 'WCG_WIND_DIRECTION'),
            Column('wind_speed', 'bool', False, 'WCG_WIND_SPEED'),
            Column('solar_radiation', 'bool', False, 'WCG_SOLAR_RADIATION'),
            Column('uv_index', 'bool', False, 'WCG_UV_INDEX'),
            Column('evapotranspiration', 'bool', False, 'WCG_EVAPOTRANSPIRATION'),
            Column('rain_rate', 'bool', False, 'WCG_RAIN_RATE'),
            Column('heat_index', 'bool', False, 'WCG_HEAT_INDEX'),
            Column('dew_point', 'bool', False, 'WCG_DEW_POINT'),
            Column('wind_chill', 'bool', False, 'WCG_WIND_CHILL'),
            Column('offset_inside_temperature', 'float32', 0.0, 'WCG_OFFSET_INSIDE_TEMPERATURE'),
            Column('offset_outside_temperature', 'float32', 0.0, 'WCG_OFFSET_OUTSIDE_TEMPERATURE'),
            Column('offset_inside_humidity', 'int16', 0, 'WCG_OFFSET_INSIDE_HUMIDITY'),
            Column('offset_outside_humidity', 'int16', 0, 'WCG_OFFSET_OUTSIDE_HUMIDITY'),
            Column('offset_wind_direction', 'int16', 0, 'WCG_OFFSET_WIND_DIRECTION'),
            Column('offset_station_altitude', 'float32', 0.0, 'WCG_OFFSET_STATION_ALTITUDE'),
            Column('offset_bar_sea_level', 'float32', 0.0, 'WCG_OFFSET_BAR_SEA_LEVEL'),
        ),
    ),
    EventType(
        'LIT',
        'lightning',
        'HiSPARC lightning data',
        extended_time=False,
        columns=(
            Column('corr_distance', 'int16', 0, 'LIT_CORR_DIST'),
            Column('uncorr_distance', 'int16', 0, 'LIT_UNCORR_DIST'),
            Column('uncorr_angle', 'float32', 0.0, 'LIT_UNCORR_ANGLE'),
            Column('corr_angle', 'float32', 0.0, 'LIT_CORR_ANGLE'),
        ),
    ),
    EventType(
        'LER',
        'lightning_errors',
        'HiSPARC lightning error messages',
        extended_time=False,
        columns=(Column('messages', 'int32', -1, 'LER_ERRMSG', blob='text'),),
    ),
    EventType(
        'LCG',
        'lightning_config',
        'HiSPARC lightning configuration messages',
        extended_time=False,
        columns=(
            Column('com_port', 'uint8', 0, 'LCG_COM_PORT'),
            Column('baud_rate', 'int16', 0, 'LCG_BAUD_RATE'),
            Column('station_id', 'uint32', 0, 'LCG_STATION_ID'),
            Column('database_name', 'int32', -1, 'LCG_DATABASE_NAME', blob='text'),
            Column('help_url', 'int32', -1, 'LCG_HELP_URL', blob='text'),
            Column('daq_mode', 'bool', False, 'LCG_DAQ_MODE'),
            Column('latitude', 'float64', 0.0, 'LCG_LATITUDE'),
            Column('longitude', 'float64', 0.0, 'LCG_LONGITUDE'),
            Column('altitude', 'float64', 0.0, 'LCG_ALTITUDE'),
            Column('squelch_seting', 'int32', 0, 'LCG_SQUELCH_SETTING'),
            Column('close_alarm_distance', 'int32', 0, 'LCG_CLOSE_ALARM_DISTANCE'),
            Column('severe_alarm_distance', 'int32', 0, 'LCG_SEVERE_ALARM_DISTANCE'),
            Column('noise_beep', 'bool', False, 'LCG_NOISE_BEEP'),
            Column('minimum_gps_speed', 'int32', 0, 'LCG_MINIMUM_GPS_SPEED'),
            Column('angle_correction', 'float32', 0.0, 'LCG_ANGLE_CORRECTION'),
        ),
    ),
    EventType(
        'LST',
        'lightning_status',
        'HiSPARC lightning status messages',
        extended_time=False,
        columns=(
            Column('close_rate', 'int16', 0, 'LST_CLOSE_RATE'),
            Column('total_rate', 'int16', 0, 'LST_TOTAL_RATE'),
            Column('close_alarm', 'bool', False, 'LST_CLOSE_ALARM'),
            Column('sever_alarm', 'bool', False, 'LST_SEVERE_ALARM'),
            Column('current_heading', 'float32', 0.0, 'LST_CURR_HEADING'),
        ),
    ),
    EventType('LNS', 'lightning_noise', 'HiSPARC lightning noise messages', extended_time=False, columns=()),
)

#: event type upload code (``'CIC'``) -> EventType
EVENT_TYPES = {et.code: et for et in _EVENT_TYPES}


def all_columns(event_type: EventType) -> tuple[Column, ...]:
    """The table's columns in on-disk order, time columns included."""
    time = TIME_COLUMNS + (EXTENDED_TIME_COLUMNS if event_type.extended_time else ())
    return time + event_type.columns


def upload_codes(event_type: EventType) -> dict[str, tuple[Column, int | None]]:
    """Map every upload code of the type to (column, array index or None)."""
    codes: dict[str, tuple[Column, int | None]] = {}
    for column in event_type.columns:
        if column.upload is None:
            continue
        if column.shape == 1:
            codes[column.upload] = (column, None)
        else:
            for i in range(column.shape):
                codes[f'{column.upload}{i + 1}'] = (column, i)
    return codes
