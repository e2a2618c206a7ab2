"""A real HTTP server on 127.0.0.1 serving checkpoint files, for the download tests.

It serves the files under ``root`` and can misbehave on purpose: ``truncate[path] = n`` sends
the full Content-Length but only ``n`` bytes and then closes the connection; ``delay`` sleeps
between 64 KiB chunks (to make two clients overlap). ``gets`` counts the GET requests per path,
``finished`` holds when the last transfer of each ended.
"""
import collections
import http.server
import os.path as osp
import threading
import time


class CheckpointServer:
    """``with CheckpointServer(root) as server: server.url('a.pth')``."""

    def __init__(self, root):
        self.root = str(root)
        self.truncate = {}
        self.delay = 0.0
        self.gets = collections.Counter()
        self.finished = {}  # path -> time.time() when its last transfer ended
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
        self.port = self._httpd.server_address[1]
        self.base = f'http://127.0.0.1:{self.port}/'

    def url(self, path=''):
        return self.base + path

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_GET(self):
                path = self.path.lstrip('/').split('?')[0]
                with server._lock:
                    server.gets[path] += 1
                file = osp.join(server.root, path)
                if not path or not osp.isfile(file):
                    self.send_error(404, 'Not Found')
                    return
                with open(file, 'rb') as f:
                    data = f.read()
                self.send_response(200)
                self.send_header('Content-Type', 'application/octet-stream')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                sent = data[:server.truncate.get(path, len(data))]
                for i in range(0, len(sent), 1 << 16):
                    self.wfile.write(sent[i:i + (1 << 16)])
                    if server.delay:
                        time.sleep(server.delay)
                server.finished[path] = time.time()
                if len(sent) < len(data):
                    self.close_connection = True

        return Handler

    def __enter__(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)
