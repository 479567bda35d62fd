"""Upload endpoint throughput: the project's app against a null app, both under uWSGI.

Both run with the deployed options (``--http-socket``, a master and 2 worker
processes) on a free 127.0.0.1 port and are driven by the same clients with
the same requests: distinct, realistic 100-event Python 2 batches (the 36 CIC
+ 64 SIN mix) from many stations, built before any timing (a resend would be
answered without storing and flatter the result). The null app reads the body
and answers ``100``; the ratio of the two rates is what the endpoint's own
work costs. Target: ratio >= 0.15 on a 2-core machine.
"""
import concurrent.futures
import datetime
import hashlib
import multiprocessing
import os
import pathlib
import random
import socket
import statistics
import sys
import tempfile
import time
import urllib.parse

from datastore import factory, py2pickle, safepickle, spool
from wsgi import form, screening

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
import uwsgi_server  # noqa: E402  (the test suite's uWSGI runner, shared)

STATIONS = 50
BATCHES = 1200                  # distinct batches, each posted once to the project's app
CLIENT_PROCESSES = 2
CLIENT_THREADS = 4              # per client process
EVENT_POOL = 8                  # batches' worth of distinct events to draw batches from

NULL_APP = '''
def application(environ, start_response):
    length = int(environ.get('CONTENT_LENGTH') or 0)
    stream = environ['wsgi.input']
    while length > 0:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            break
        length -= len(chunk)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '3')])
    return [b'100']
'''

_requests = []                  # the pre-built HTTP requests, shared with the clients by fork


def _events(seed):
    """A pool of realistic events (traces are costly to make; batches reuse them)."""
    rng = random.Random(seed)
    start = datetime.datetime(2024, 3, 1)
    return [factory.batch(start, rng) for _ in range(EVENT_POOL)]


def _request(args):
    """One station's upload of a distinct batch, as raw HTTP/1.1 bytes."""
    index, pool = args
    rng = random.Random(index)
    events = [event for events in pool for event in events]
    chosen = rng.sample(events, 100)
    when = datetime.datetime(2024, 3, 1) + datetime.timedelta(minutes=index)
    batch = [{'header': dict(event['header'], datetime=when + datetime.timedelta(seconds=i)),
              'datalist': event['datalist']} for i, event in enumerate(chosen)]
    pickled = py2pickle.dumps(batch)
    station = 1000 + index % STATIONS
    body = urllib.parse.urlencode({
        'station_id': str(station), 'password': f'pw-{station}',
        'data': pickled.decode('latin1'),
        'checksum': hashlib.md5(pickled).hexdigest()}).encode('ascii')
    head = (f'POST /hisparc/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n'
            f'Content-Type: application/x-www-form-urlencoded\r\n'
            f'Content-Length: {len(body)}\r\n\r\n').encode('ascii')
    return head + body


def build_requests(count):
    with multiprocessing.get_context('fork').Pool(os.cpu_count() or 1) as workers:
        pool = _events(0)
        return workers.map(_request, [(i, pool) for i in range(count)], chunksize=16)


def _post(port, request):
    started = time.perf_counter()
    with socket.create_connection(('127.0.0.1', port), timeout=60) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = b''.join(chunks)
    return time.perf_counter() - started, reply.rpartition(b'\r\n\r\n')[2].decode('latin1')


def _client(args):
    port, indexes = args
    with concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as threads:
        return list(threads.map(lambda i: _post(port, _requests[i]), indexes))


def drive(port, count):
    """Post requests 0..count-1 from all clients; (seconds, [(latency, reply)])."""
    shares = [(port, range(k, count, CLIENT_PROCESSES)) for k in range(CLIENT_PROCESSES)]
    with multiprocessing.get_context('fork').Pool(CLIENT_PROCESSES) as clients:
        started = time.perf_counter()
        results = clients.map(_client, shares)
        elapsed = time.perf_counter() - started
    return elapsed, [result for share in results for result in share]


def summary(name, elapsed, results):
    latencies = sorted(latency for latency, _ in results)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = len(results) / elapsed
    print(f'{name:>12}: {len(results)} uploads in {elapsed:.2f} s = {rate:7.1f} req/s, '
          f'latency median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms',
          flush=True)
    return rate


def phases(count=200):
    """CPU milliseconds per upload of each step of the upload path, in-process."""
    spent = dict.fromkeys(('decode form', 'checksum', 'unpickle', 'screen', 'pickle spool file',
                           'deliver (write, fsync, rename, fsync)'), 0.0)

    def timed(step, func, *args):
        started = time.process_time()
        result = func(*args)
        spent[step] += time.process_time() - started
        return result
    with tempfile.TemporaryDirectory(prefix='hisparc-bench-') as data_dir:
        for request in _requests[:count]:
            fields = timed('decode form', form.parse, request.partition(b'\r\n\r\n')[2])
            pickled = timed('checksum', form.pickle_bytes, fields['data'], fields['checksum'])
            events = timed('unpickle', safepickle.loads, pickled)
            good, _ = timed('screen', screening.split, events, 2020)
            payload = timed('pickle spool file', spool.dumps, 1000, 'Bench', good)
            timed('deliver (write, fsync, rename, fsync)', spool.deliver, data_dir, spool.INCOMING,
                  spool.unique_name(1000), payload)
    print('in-process CPU per upload: ' + ', '.join(
        f'{step} {seconds / count * 1000:.2f} ms' for step, seconds in spent.items())
        + f'; total {sum(spent.values()) / count * 1000:.2f} ms', flush=True)


def main():
    print(f'building {BATCHES} distinct 100-event Python 2 batches from {STATIONS} stations ...',
          flush=True)
    _requests[:] = build_requests(BATCHES)
    size = sum(map(len, _requests)) / len(_requests)
    print(f'average request {size / 1000:.0f} kB; clients: {CLIENT_PROCESSES} processes x '
          f'{CLIENT_THREADS} threads; uWSGI: --http-socket, master + 2 workers', flush=True)
    with tempfile.TemporaryDirectory(prefix='hisparc-bench-') as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / 'stations.csv').write_text(
            ''.join(f'{1000 + i},Bench,pw-{1000 + i}\n' for i in range(STATIONS)))
        configfile = tmp / 'config.ini'
        configfile.write_text(f'[General]\nlog={tmp / "hisparc.log"}\nloglevel=info\n'
                              f'station_list={tmp / "stations.csv"}\ndata_dir={tmp / "datastore"}\n')
        null_app = tmp / 'null.wsgi'
        null_app.write_text(NULL_APP)
        options = ('--disable-logging',)               # uWSGI's request log, for both alike
        runs = []
        for application in (null_app, uwsgi_server.APPLICATION):
            with uwsgi_server.running(str(configfile), *options, application=application) as server:
                for _ in range(20):                     # both workers up and initialised
                    server.request('GET')
                runs.append(drive(server.port, BATCHES))
        (null_elapsed, null_results), (drive_elapsed, results) = runs
        replies = {}
        for _, reply in null_results + results:
            replies[reply] = replies.get(reply, 0) + 1
        stored = len(spool.queued(str(tmp / 'datastore')))
        null_rate = summary('null app', null_elapsed, null_results)
        rate = summary('project app', drive_elapsed, results)
        print(f'ratio project/null: {rate / null_rate:.3f} (target >= 0.15); replies {replies}; '
              f'{stored} batches spooled in incoming/')
        phases()
        if set(replies) != {'100'} or stored != BATCHES:
            sys.exit('benchmark FAILED: not every upload was answered 100 and stored')


if __name__ == '__main__':
    main()
